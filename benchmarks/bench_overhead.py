from copybench.instructions import (
    INSTRUCTION_METHODS,
    INSTRUCTION_SIZES,
    count_instructions,
    valgrind_available,
)
from copybench.paired import (
    OVERHEAD_MODELS,
    OVERHEAD_SIZES,
    PAIRS,
    THREADS,
    paired_overhead,
    prepare_module_pair,
    prepare_tensor_pair,
)

from . import prepared_or_skip

# Each track_ is one paired measurement of this many seconds (copybench.paired).
BUDGET = 0.4


class TrackedCloneOverhead:
    """x.clone().detach() over x.detach().clone(), float32 leaf requiring grad, paired."""

    params = [list(OVERHEAD_SIZES), list(THREADS)]
    param_names = ["numel", "threads"]
    rounds = 1
    unit = "%"

    def setup(self, numel, threads):
        base, head = PAIRS["tracked_clone"]
        pair = prepared_or_skip(
            prepare_tensor_pair, base, head, numel, "float32", True, "contiguous", "cpu", threads
        )
        self.result = paired_overhead(pair, BUDGET)

    def track_tracked_clone_overhead(self, numel, threads):
        return self.result.overhead_pct


class CloneVsCopyInto:
    """What a fresh allocation adds: x.clone() over out.copy_(x) into a touched buffer."""

    params = [list(OVERHEAD_SIZES), list(THREADS)]
    param_names = ["numel", "threads"]
    rounds = 1
    unit = "%"

    def setup(self, numel, threads):
        base, head = PAIRS["clone_vs_copy_into"]
        pair = prepared_or_skip(
            prepare_tensor_pair, base, head, numel, "float32", False, "contiguous", "cpu", threads
        )
        self.result = paired_overhead(pair, BUDGET)

    def track_clone_vs_copy_into_overhead(self, numel, threads):
        return self.result.overhead_pct


class DeepcopyVsSnapshot:
    """copy.deepcopy(model) over a state_dict snapshot of detached clones, paired."""

    params = [list(OVERHEAD_MODELS)]
    param_names = ["model"]
    rounds = 1
    unit = "%"

    def setup(self, model):
        base, head = PAIRS["deepcopy_vs_snapshot"]
        pair = prepared_or_skip(prepare_module_pair, base, head, model, "cpu", 1)
        self.result = paired_overhead(pair, BUDGET)

    def track_deepcopy_vs_snapshot_overhead(self, model):
        return self.result.overhead_pct


class InstructionCounts:
    """Instructions per call (callgrind) of the tracked and untracked clone, small tensors."""

    params = [list(INSTRUCTION_SIZES)]
    param_names = ["numel"]
    rounds = 1
    unit = "instructions"
    timeout = 300

    def setup_cache(self):
        # One Valgrind process counts every statement and size (copybench.instructions).
        if not valgrind_available():
            return None
        return {
            f"{m}-{n}": c.instructions
            for (m, n), c in count_instructions(INSTRUCTION_METHODS, INSTRUCTION_SIZES).items()
        }

    def setup(self, counts, numel):
        if counts is None:
            raise NotImplementedError("valgrind (callgrind) is not available")
        self.tracked = counts[f"clone_detach-{numel}"]
        self.untracked = counts[f"detach_clone-{numel}"]

    def track_instructions_tracked_clone(self, counts, numel):
        return self.tracked

    def track_instructions_untracked_clone(self, counts, numel):
        return self.untracked

    def track_instructions_tracked_clone_overhead(self, counts, numel):
        return self.tracked - self.untracked
