from copybench.measure.instructions import count_instructions, valgrind_available
from copybench.suite.cases import INSTRUCTION_METHODS, INSTRUCTION_SIZES, TRACKED, UNTRACKED


class InstructionCounts:
    """Instructions per call (callgrind) of the tracked and untracked clone, small tensors."""

    params = [list(INSTRUCTION_SIZES)]
    param_names = ["numel"]
    rounds = 1
    unit = "instructions"
    timeout = 300

    def setup_cache(self):
        # One Valgrind process counts every statement and size (copybench.measure.instructions).
        if not valgrind_available():
            return None
        return {
            f"{m}-{n}": c.instructions
            for (m, n), c in count_instructions(INSTRUCTION_METHODS, INSTRUCTION_SIZES).items()
        }

    def setup(self, counts, numel):
        if counts is None:
            raise NotImplementedError("valgrind (callgrind) is not available")
        self.tracked = counts[f"{TRACKED}-{numel}"]
        self.untracked = counts[f"{UNTRACKED}-{numel}"]

    def track_instructions_tracked_clone(self, counts, numel):
        return self.tracked

    def track_instructions_untracked_clone(self, counts, numel):
        return self.untracked

    def track_instructions_tracked_clone_overhead(self, counts, numel):
        return self.tracked - self.untracked
