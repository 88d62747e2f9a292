from copybench.suite.cases import MODULE_AXES
from copybench.suite.methods import module_method_names
from copybench.suite.prepare import prepare_module_case
from copybench.suite.timing import peak_rss_growth, rss_peak_supported

from . import prepared_or_skip


class ModuleCopy:
    """One copy of a reference model, by every registered module method.

    Models vary in parameter count (1e4 .. 1e7 in 8 tensors) and, at 1e6 parameters, in the
    number of tensors (2 .. 512).
    """

    params = [module_method_names(), *map(list, MODULE_AXES.values())]
    param_names = ["method", *MODULE_AXES]
    warmup_time = 0.05
    sample_time = 0.01
    repeat = (3, 20, 0.4)
    rounds = 2

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_module_case, *case)

    def time_module_copy(self, *case):
        self.case.run()

    def peakmem_module_copy(self, *case):
        self.case.run()

    def track_peak_rss_growth(self, *case):
        if not rss_peak_supported():
            raise NotImplementedError("needs Linux /proc/self/clear_refs")
        return peak_rss_growth(self.case.run)

    track_peak_rss_growth.unit = "bytes"
