from copybench.measure.allocator import measure_remedy, prepare_op
from copybench.suite.cases import ALLOCATOR_AXES, ALLOCATOR_REMEDY_AXES
from copybench.suite.stats import summarize_modes

from . import prepared_or_skip


class AllocatorCopy:
    """Large CPU tensors: clone vs empty_like (allocation only) vs copy_ into a touched buffer."""

    params = [list(v) for v in ALLOCATOR_AXES.values()]
    param_names = list(ALLOCATOR_AXES)
    rounds = 1
    # One call per sample: a batch would average the allocator's two modes into one number.
    number = 1
    warmup_time = 0.01
    repeat = (10, 40, 0.3)

    def setup(self, method, numel, threads):
        self.run, self.source = prepared_or_skip(prepare_op, method, numel, threads)

    def time_allocator_op(self, method, numel, threads):
        self.run()


class AllocatorModes:
    """The same ops in a fresh process per remedy (glibc tunables fixed in its environment)."""

    params = [list(v) for v in ALLOCATOR_REMEDY_AXES.values()]
    param_names = list(ALLOCATOR_REMEDY_AXES)
    rounds = 1
    timeout = 300

    def setup_cache(self):
        return {
            remedy: {
                f"{op}-{n}": summarize_modes(s) for (op, n), s in measure_remedy(remedy).items()
            }
            for remedy in ALLOCATOR_REMEDY_AXES["remedy"]
        }

    def setup(self, cache, remedy, method, numel):
        self.summary = cache[remedy][f"{method}-{numel}"]

    def track_allocator_median_ms(self, cache, remedy, method, numel):
        return self.summary["median"] * 1e3

    track_allocator_median_ms.unit = "ms"

    def track_allocator_slow_fraction(self, cache, remedy, method, numel):
        return self.summary["slow_fraction"]

    track_allocator_slow_fraction.unit = "fraction"

    def track_allocator_bimodal(self, cache, remedy, method, numel):
        return float(self.summary["bimodal"])

    track_allocator_bimodal.unit = "flag"
