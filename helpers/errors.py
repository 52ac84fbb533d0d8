"""The one error type the course raises for a problem the learner can fix."""

from __future__ import annotations


class CourseError(RuntimeError):
    """An error with a short, actionable message: notebooks show it without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]
