from copybench.suite.cases import CUDA_TENSOR_AXES, MODULE_AXES
from copybench.suite.methods import module_method_names, tensor_method_names
from copybench.suite.prepare import prepare_module_case, prepare_tensor_case
from copybench.suite.timing import calls_for, cuda_event_seconds, cuda_peak_bytes, cuda_sync_seconds

from . import prepared_or_skip


class CudaTensorCopy:
    """CUDA copies timed by events over a batch of calls, beside the sync-per-call figure."""

    params = [tensor_method_names(), *map(list, CUDA_TENSOR_AXES.values())]
    param_names = ["method", *CUDA_TENSOR_AXES]
    repeat = 1
    number = 1
    rounds = 1

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_tensor_case, *case)
        self.calls = calls_for(self.case.call, self.case.device)

    def track_event_seconds(self, *case):
        return cuda_event_seconds(self.case.call, self.case.device, self.calls)

    def track_sync_seconds(self, *case):
        return cuda_sync_seconds(self.case.call, self.case.device, self.calls)

    track_event_seconds.unit = "seconds"
    track_sync_seconds.unit = "seconds"


class CudaModuleCopy:
    """GPU memory a module copy allocates at its peak (max_memory_allocated, reset per case)."""

    params = [
        module_method_names(),
        list(MODULE_AXES["model"]),
        ["cuda"],
        list(MODULE_AXES["threads"]),
    ]
    param_names = ["method", *MODULE_AXES]

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_module_case, *case)

    def track_cuda_peak_bytes(self, *case):
        return cuda_peak_bytes(self.case.call, self.case.device)

    track_cuda_peak_bytes.unit = "bytes"
