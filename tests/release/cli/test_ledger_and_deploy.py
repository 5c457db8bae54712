"""The ledger (the workspace's stack file in git) and `deploy` during and after a canary: a
merge to main of an unrelated key deploys without moving the release; a merge that moves a
release key is refused; a deploy after a promotion deploys the promoted version."""

from __future__ import annotations

from tests.release.cli.conftest import Project, tracks

AT_25 = {"stable": ("v1.4.0", 75), "canary": ("v2.0.0", 25)}
NODE_GROUP = "eks:index:ManagedNodeGroup"  # carries cluster.maxNodes as scalingConfig.maxSize


def merge_to_main(project: Project, stack: str, changes: dict, message: str) -> None:
    """Another author commits a change of the stack file to the workspace's branch (main)."""
    project.stack_file(stack).write(changes)
    project.git(stack, "commit", "--quiet", "-m", message, "--", f"Pulumi.{stack}.yaml")


def max_nodes(project: Project, stack: str) -> int:
    (group,) = project.state(stack).resources(NODE_GROUP)
    return group["inputs"]["scalingConfig"]["maxSize"]


def test_a_merge_of_an_unrelated_key_deploys_during_a_canary_and_a_merge_of_a_release_key_is_refused(project_at):
    project = project_at("staging at 25 %")
    assert tracks(project.state("staging").applied) == AT_25
    assert max_nodes(project, "staging") == 5

    merge_to_main(project, "staging", {"cluster.maxNodes": 6}, "cluster: one more node at most")
    deployed = project.cli("deploy", "staging")
    assert deployed.code == 0, str(deployed)
    assert deployed.out.strip().splitlines() == [
        "staging: stack file deployed", "stack staging: deployed; release states unchanged: chat-api canary v2.0.0 25 % +testers, stable v1.4.0 75 %",
    ], deployed.out
    state = project.state("staging")
    assert tracks(state.applied) == AT_25 and state.applied.candidate == "v2.0.0", "the canary stays where it was"
    assert max_nodes(project, "staging") == 6, "the merged change is deployed"
    assert state.in_step
    assert state.events(state.runs()[-1]) == [("deploy", "started"), ("deploy", "applied")]
    assert "Merge Bot" in project.git("staging", "log", "--format=%an"), "the merge stays in the ledger"

    merge_to_main(project, "staging", {"services.chat-api.rollout.canary.weight": 50}, "canary to 50 % by hand")
    refused = project.cli("deploy", "staging")
    assert refused.code == 1, str(refused)
    assert "would move the release of chat-api (canary: v2.0.0 x1 25 %" in refused.err and "Traceback" not in refused.err, str(refused)
    state = project.state("staging")
    assert tracks(state.applied) == AT_25, "the refused deploy moved nothing"
    assert max_nodes(project, "staging") == 6
    assert state.events(state.runs()[-1])[-1] != ("deploy", "started"), "a refused deploy does not start an update"

    status = project.status("staging")
    assert "NOT IN STEP" in status.first_line and "NO DRIVER IS JUDGING IT" in status.first_line, status.out


def test_a_deploy_after_a_promotion_deploys_the_promoted_version(project_at):
    project = project_at("staging at 25 %")
    promoted = project.cli("promote", "staging")
    assert promoted.code == 0, str(promoted)
    assert promoted.out.strip().splitlines() == ["staging/chat-api: v2.0.0 promoted to stable"]

    deployed = project.cli("deploy", "staging")
    assert deployed.code == 0, str(deployed)
    assert "release states unchanged: chat-api stable v2.0.0 100 %" in deployed.out
    state = project.state("staging")
    assert state.service["tag"] == "v2.0.0"
    assert tracks(state.applied) == {"stable": ("v2.0.0", 100)}
    assert state.in_step and state.applied.in_flight is None
