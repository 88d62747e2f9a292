from copybench.suite.cases import TRANSFER_AXES
from copybench.suite.methods import transfer_method_names
from copybench.suite.prepare import prepare_transfer_case
from copybench.suite.timing import calls_for, cuda_event_seconds

from . import prepared_or_skip


class Transfer:
    """Host <-> GPU and GPU <-> GPU copies, from pageable and from pinned host memory."""

    params = [transfer_method_names(), *map(list, TRANSFER_AXES.values())]
    param_names = ["method", *TRANSFER_AXES]
    warmup_time = 0.02
    sample_time = 0.002
    repeat = (5, 15, 0.1)

    def setup(self, *case):
        self.case = prepared_or_skip(prepare_transfer_case, *case)

    def time_transfer(self, *case):
        self.case.run()

    def track_event_seconds(self, *case):
        calls = calls_for(self.case.run, self.case.device)
        return cuda_event_seconds(self.case.run, self.case.device, calls)

    track_event_seconds.unit = "seconds"
