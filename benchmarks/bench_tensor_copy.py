from copybench.suite.cases import TENSOR_AXES
from copybench.suite.methods import tensor_method_names
from copybench.suite.prepare import prepare_tensor_case

from . import prepared_or_skip


class TensorCopy:
    """One copy of a tensor, by every registered tensor method, over the grid.

    The source is created and touched in setup; what the copy allocates (for clone,
    deepcopy ...) is inside the timed region because real code pays for it too.
    """

    params = [tensor_method_names(), *map(list, TENSOR_AXES.values())]
    param_names = ["method", *TENSOR_AXES]
    # About 0.25 s per case and round, so that the default CPU suite fits this project's
    # time budget on 2 cores; two rounds put two fresh processes (two allocator states)
    # behind every median.
    warmup_time = 0.02
    sample_time = 0.002
    repeat = (5, 15, 0.1)
    rounds = 2

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_tensor_case, *case)

    def time_tensor_copy(self, *case):
        self.case.run()
