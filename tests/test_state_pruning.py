"""An episode's stored workflow state stays the size of its process however long it runs: finished
review cycles and settled service requests are pruned (app/engine/pruning.py), while the diagram,
deadlines, retries, migration and transfer go on as before, and a process runs as it would unpruned."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, text

import handlers
from app.clock import as_utc
from app.engine.library import Bundle, deploy
from app.engine.pruning import prune
from app.engine.scripting import SCRIPT_ENGINE
from app.engine.serializer import SERIALIZER_VERSION, dump_state, load_state
from app.models import Episode, OutboxMessage
from app.services import episode_transfer as transfer
from app.services import process_migrations as migrations
from app.services.service_requests import decide

from .conftest import complete, processes_copy, ready_task
from .journeys import to_review, today
from .process_models import edit
from .test_episode_transfer import as_file, newshire, schema_errors  # noqa: F401 (newshire is a fixture)
from .test_process_migration import owner
from .test_service_requests import send, teams, user  # noqa: F401 (teams is a fixture)
from .transfer_release import released_file


def stored(runtime, episode_id: int) -> tuple[int, int]:
    """(bytes, task instances) of the episode's stored state, over the workflow and its subprocesses."""
    with runtime.db.session() as session:
        state = session.get(Episode, episode_id).state
    document = json.loads(state)
    return len(state.encode()), sum(len(part["tasks"]) for part in [document, *document["subprocesses"].values()])


def review_cycle(runtime, episode_id: int, user_id: int | None = None) -> None:
    """Review (support continues) and agree the next plan: the delivery loop once round."""
    complete(runtime, episode_id, "review", {"review_date": today().isoformat(), "outcome": "continue",
                                             "next_review_date": (today() + timedelta(days=42)).isoformat()},
             user_id)
    complete(runtime, episode_id, "action_plan", {
        "actions": [{"identified_need": "Attendance", "action": "Morning club", "responsible": "School"}],
        "headline_outcomes": ["education"],
        "next_review_date": (today() + timedelta(days=42)).isoformat()}, user_id)


def positions(runtime, episode_id: int) -> dict[str, list[str]]:
    with runtime.db.session() as session:
        return runtime.engine.positions(session.get(Episode, episode_id))


def test_review_cycles_do_not_grow_the_state_and_their_steps_stay_done(runtime, people, monkeypatch):
    episode_id = to_review(runtime, people)
    first_bytes, _ = stored(runtime, episode_id)
    with monkeypatch.context() as before_pruning:  # states as eCAF stored them before it pruned
        before_pruning.setattr("app.engine.runner.prune", lambda workflow: None)
        for _ in range(3):
            review_cycle(runtime, episode_id)
    _, grown = stored(runtime, episode_id)

    review_cycle(runtime, episode_id)  # the first save that prunes drops the old history too
    _, pruned = stored(runtime, episode_id)
    review_cycle(runtime, episode_id)
    size, steady = stored(runtime, episode_id)
    assert steady == pruned < grown, "a cycle adds nothing once the older cycles are pruned"
    assert size <= 1.5 * first_bytes

    # The diagram still shows the loop's steps done, and where the episode is.
    shown = positions(runtime, episode_id)
    assert {"tac_meeting", "action_plan", "store_action_plan", "schedule_review", "store_review",
            "gw_continue"} <= set(shown["done"])
    assert "review" in shown["active"] and "review" not in shown["done"]


def test_a_pruned_episode_keeps_its_review_deadline_and_a_failed_reminder_is_retried(runtime, people, monkeypatch):
    episode_id = to_review(runtime, people)
    for _ in range(3):
        review_cycle(runtime, episode_id)
    due = as_utc(ready_task(runtime, episode_id, "review").due_at)
    with runtime.db.session() as session:
        assert as_utc(session.get(Episode, episode_id).next_timer_at) == due, "the last plan's review date"

    def unreachable(ctx, **params):
        raise ConnectionError("mail relay unreachable")

    real = handlers.OPERATORS["reviews/reminder"]
    monkeypatch.setitem(handlers.OPERATORS, "reviews/reminder", unreachable)
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert runtime.engine.wake(episode_id).status == "error"
        monkeypatch.setitem(handlers.OPERATORS, "reviews/reminder", real)
        assert runtime.engine.retry(episode_id, people["admin"]).status == "open"
    with runtime.db.session() as session:
        reminders = session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == episode_id,
                                                                OutboxMessage.kind == "review_due")).all()
    assert len(reminders) == 1
    review_cycle(runtime, episode_id)  # the review is still there to do


def test_settled_service_requests_leave_the_state_as_it_was(runtime, people, teams):  # noqa: F811
    episode_id = to_review(runtime, people)
    none_bytes, _ = stored(runtime, episode_id)
    settled = []
    for _ in range(3):
        request_id = send(runtime, people, teams, episode_id)
        assert not decide(runtime, request_id, user(runtime, teams["eve"]), {"decision": "accept"}).errors
        settled.append(stored(runtime, episode_id))
    assert settled[1][1] == settled[2][1], "a settled request adds nothing to the state"
    assert settled[2][0] <= 1.5 * none_bytes
    # The called process is gone from the state; its user tasks are done on the diagram from our own rows.
    assert {"run_request", "request_form", "team_decision"} <= set(positions(runtime, episode_id)["done"])
    review_cycle(runtime, episode_id)  # and the episode goes on


def test_a_pruned_episode_migrates_keeping_its_deadline(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    episode_id = to_review(runtime, people)
    for _ in range(3):
        review_cycle(runtime, episode_id)
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
        deploy(session, Bundle.from_directory(edit(processes_copy(tmp_path), (
            '<bpmn:userTask id="review" name="Review progress">',
            '<bpmn:userTask id="review" name="Review progress with the family">'))))
    result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[episode_id], note="Clearer name",
                            by_user_id=owner_id)
    assert result.migrated == [episode_id], result
    assert ready_task(runtime, episode_id, "review").title == "Review progress with the family"
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).next_timer_at == due
    review_cycle(runtime, episode_id)
    _, tasks = stored(runtime, episode_id)
    review_cycle(runtime, episode_id)
    assert stored(runtime, episode_id)[1] == tasks, "and its cycles are pruned as before"


def test_a_pruned_episode_moves_to_another_authority_and_carries_on(runtime, people, newshire):  # noqa: F811
    old_id = to_review(runtime, people)
    for _ in range(3):
        review_cycle(runtime, old_id)
    _, tasks = stored(runtime, old_id)
    document = released_file(runtime, old_id, newshire["admin"], people["admin"])
    assert schema_errors(document) == []
    new = transfer.import_episode(runtime, as_file(document), newshire["admin"], newshire["lead_email"])
    assert stored(runtime, new.id)[1] == tasks
    review_cycle(runtime, new.id, newshire["lead"])
    assert stored(runtime, new.id)[1] == tasks


# A loop around a multi-instance task and a parallel split and join, with data each pass reads and changes.
LOOPS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="loops" targetNamespace="test">
  <bpmn:process id="loops" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="init"><bpmn:script>i = 0
log = []</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="merge"/>
    <bpmn:userTask id="ask"><bpmn:multiInstanceLoopCharacteristics isSequential="true">
      <bpmn:loopCardinality>3</bpmn:loopCardinality>
      <bpmn:completionCondition>i &gt; 100</bpmn:completionCondition>
    </bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
    <bpmn:parallelGateway id="split"/>
    <bpmn:userTask id="side"/>
    <bpmn:scriptTask id="seen"><bpmn:script>seen = i</bpmn:script></bpmn:scriptTask>
    <bpmn:parallelGateway id="join"/>
    <bpmn:scriptTask id="count"><bpmn:script>i = i + 1
log = log + [i]</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="again" default="done"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="init"/>
    <bpmn:sequenceFlow id="f2" sourceRef="init" targetRef="merge"/>
    <bpmn:sequenceFlow id="f3" sourceRef="merge" targetRef="ask"/>
    <bpmn:sequenceFlow id="f4" sourceRef="ask" targetRef="split"/>
    <bpmn:sequenceFlow id="f5" sourceRef="split" targetRef="side"/>
    <bpmn:sequenceFlow id="f6" sourceRef="split" targetRef="seen"/>
    <bpmn:sequenceFlow id="f7" sourceRef="side" targetRef="join"/>
    <bpmn:sequenceFlow id="f8" sourceRef="seen" targetRef="join"/>
    <bpmn:sequenceFlow id="f9" sourceRef="join" targetRef="count"/>
    <bpmn:sequenceFlow id="f10" sourceRef="count" targetRef="again"/>
    <bpmn:sequenceFlow id="back" sourceRef="again" targetRef="merge">
      <bpmn:conditionExpression>i &lt; 5</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="done" sourceRef="again" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def run_saving_every_step(xml: str, process_id: str, pruned: bool, pick=lambda ready, offered: ready[0]):
    """Run a process's user tasks to the end, saving and loading after each one (pruning before the
    save, if asked): the tasks offered with their data, the workflow's data at the end, and the
    task instances stored after each step."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml.encode(), filename=f"{process_id}.bpmn")
    spec, subprocess_specs = parser.get_spec(process_id), parser.get_subprocess_specs(process_id)
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SCRIPT_ENGINE)
    workflow.do_engine_steps()
    offered, sizes = [], []
    while not workflow.is_completed():
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        assert ready, f"stuck after {[name for name, _data in offered]}"
        task = pick(ready, offered)
        offered.append((task.task_spec.name, dict(task.data)))
        task.set_data(answer=len(offered))
        task.run()
        workflow.do_engine_steps()
        if pruned:
            prune(workflow)
        state = dump_state(workflow)
        sizes.append(len(json.loads(state)["tasks"]))
        workflow = load_state(state, SERIALIZER_VERSION, spec, subprocess_specs)
        workflow.script_engine = SCRIPT_ENGINE
    return offered, workflow.data, sizes


def test_pruning_changes_nothing_a_looping_process_does():
    """The same run with and without pruning, saved and loaded after every task: the same tasks
    offered with the same data, the same result; pruned, the state stops growing."""
    offered, result, sizes = run_saving_every_step(LOOPS, "loops", pruned=False)
    offered_pruned, result_pruned, sizes_pruned = run_saving_every_step(LOOPS, "loops", pruned=True)
    assert offered_pruned == offered and len(offered) == 20
    assert result_pruned == result and result["log"] == [1, 2, 3, 4, 5]
    passes = range(4, 16, 4)  # four tasks a pass; the first is the one before any history
    assert [sizes_pruned[p:p + 4] for p in passes] == [sizes_pruned[4:8]] * 3, "a pass adds nothing"
    grown = [max(sizes[p:p + 4]) for p in passes]
    assert grown[0] < grown[1] < grown[2], "unpruned, every pass adds its tasks"


# A loop around a parallel split and join of three user tasks, each done in a step of its own.
THREE_BRANCHES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="three" targetNamespace="test">
  <bpmn:process id="three" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="init"><bpmn:script>i = 0</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="merge"/>
    <bpmn:parallelGateway id="split"/>
    <bpmn:userTask id="a"/>
    <bpmn:userTask id="b"/>
    <bpmn:userTask id="c"/>
    <bpmn:scriptTask id="from_a"><bpmn:script>got_a = answer</bpmn:script></bpmn:scriptTask>
    <bpmn:parallelGateway id="join"/>
    <bpmn:scriptTask id="count"><bpmn:script>i = i + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="again" default="done"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="init"/>
    <bpmn:sequenceFlow id="f2" sourceRef="init" targetRef="merge"/>
    <bpmn:sequenceFlow id="f3" sourceRef="merge" targetRef="split"/>
    <bpmn:sequenceFlow id="fa" sourceRef="split" targetRef="a"/>
    <bpmn:sequenceFlow id="fb" sourceRef="split" targetRef="b"/>
    <bpmn:sequenceFlow id="fc" sourceRef="split" targetRef="c"/>
    <bpmn:sequenceFlow id="ja" sourceRef="a" targetRef="from_a"/>
    <bpmn:sequenceFlow id="ja2" sourceRef="from_a" targetRef="join"/>
    <bpmn:sequenceFlow id="jb" sourceRef="b" targetRef="join"/>
    <bpmn:sequenceFlow id="jc" sourceRef="c" targetRef="join"/>
    <bpmn:sequenceFlow id="f9" sourceRef="join" targetRef="count"/>
    <bpmn:sequenceFlow id="f10" sourceRef="count" targetRef="again"/>
    <bpmn:sequenceFlow id="back" sourceRef="again" targetRef="merge">
      <bpmn:conditionExpression>i &lt; 4</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="done" sourceRef="again" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_join_of_three_branches_in_a_loop_waits_for_each_as_it_would_unpruned():
    """The first branch's waiting join is cancelled when the second arrives; that cancelled instance
    is what tells the join, when the third arrives, that the first is in, and whose data it merges."""
    # The same order each round, and alternating rounds. Each round ends on c: unpruned, SpiffWorkflow
    # also counts arrivals an earlier round left, so a round ending on another branch would fire early.
    for order in ("abc", "bacabc"):
        def pick(ready, offered, order=order):
            return next(task for task in ready if task.task_spec.name == order[len(offered) % len(order)])

        offered, result, sizes = run_saving_every_step(THREE_BRANCHES, "three", pruned=False, pick=pick)
        offered_pruned, result_pruned, sizes_pruned = run_saving_every_step(THREE_BRANCHES, "three", pruned=True,
                                                                            pick=pick)
        assert offered_pruned == offered and len(offered) == 12, order
        assert result_pruned == result and result["i"] == 4, order
        assert [data["i"] for _name, data in offered] == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3, \
            "each round's join waits for all three branches"
        assert max(sizes_pruned[3:]) == max(sizes_pruned[3:6]) < max(sizes[3:]), f"{order}: a round adds nothing"


def test_a_state_is_stored_compressed_with_lz4_on_postgresql(runtime, people):
    if not runtime.db.is_postgresql:
        pytest.skip("PostgreSQL's column compression")
    episode_id = to_review(runtime, people)
    with runtime.db.session() as session:
        method = session.scalar(text("SELECT pg_column_compression(state) FROM episode WHERE id = :id"),
                                {"id": episode_id})
    assert method == "lz4"
