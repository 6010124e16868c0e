"""What the BREAKPOINT_RESUMED and TASK_COMPLETED events say to a person."""

from __future__ import annotations

from activities.event_text import RESULT_PREVIEW_CHARS, decision_text, result_preview
from agent.contract.breakpoints import ResumeAction
from agent.contract.task import MilestoneChange, MilestoneSpec, PlanEdit, ResumeRequest


def test_an_edit_says_what_changed() -> None:
    request = ResumeRequest(
        breakpoint_id="bp-1-after_plan",
        action=ResumeAction.CONTINUE,
        edits=PlanEdit(
            add=[MilestoneSpec(key="m3", title="Proofread", depends_on=["m2"])],
            remove=["m1"],
            change=[MilestoneChange(key="m2", title="Write it", depends_on=[])],
        ),
        feedback="shorter, please",
    )

    assert decision_text(request) == (
        "continue (edit: add m3; remove m1; change m2 title/depends_on; with feedback)"
    )


def test_a_plain_decision_is_its_action() -> None:
    request = ResumeRequest(breakpoint_id="bp-2", action=ResumeAction.SKIP)

    assert decision_text(request) == "skip"


def test_the_result_preview_is_cut_with_an_ellipsis() -> None:
    assert result_preview(None) is None
    assert result_preview("short") == "short"
    long = "word " * 400
    preview = result_preview(long)
    assert preview is not None
    assert len(preview) <= RESULT_PREVIEW_CHARS
    assert preview.endswith("…")
    assert long.startswith(preview[:-1])
