from copybench.bench import prepare_tensor_case
from copybench.cases import DEFAULT_THREADS, DEVICES, DTYPES, LAYOUTS, REQUIRES_GRAD, SIZES
from copybench.methods import tensor_method_names

from . import prepared_or_skip


class TensorCopy:
    """One copy of a tensor, by every registered tensor method, over the grid.

    The source is created and touched in setup; what the copy allocates (for clone,
    deepcopy ...) is inside the timed region because real code pays for it too.
    """

    params = [tensor_method_names(), list(SIZES), list(DTYPES), list(REQUIRES_GRAD),
              list(LAYOUTS), list(DEVICES), [DEFAULT_THREADS]]
    param_names = ["method", "numel", "dtype", "requires_grad", "layout", "device", "threads"]
    warmup_time = 0.05
    sample_time = 0.005
    repeat = (5, 30, 0.25)
    rounds = 2

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_tensor_case, *case)

    def time_tensor_copy(self, *case):
        self.case.run()
