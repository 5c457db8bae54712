from offline import harness
from offline.render import render_tree, type_counts

SERVICE = {"tag": "v0.3.0", "rollout": {"strategy": "rolling"}}
# Two services more, added out of name order: the settings (and so the program) take them by name.
THREE_SERVICES = {"services.triage-api": {**SERVICE, "pathPrefix": "/triage"}, "services.billing-api": {**SERVICE, "pathPrefix": "/billing"}}


def top_level(tree: str) -> list[str]:
    return [line[4:] for line in tree.splitlines() if line.startswith(("├── ", "└── "))]


def subtree(tree: str, line: str) -> list[str]:
    """The lines under `line` (the stack's child at `line`) up to its next sibling."""
    lines = tree.splitlines()
    start = lines.index(line)
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(("│", "    ")))
    return lines[start + 1 : end]


def test_the_tree_is_the_platform_in_build_order_then_each_service_by_name(run_stack):
    tree = render_tree(run_stack("demo", THREE_SERVICES))
    assert top_level(tree) == [
        "network  [carepath:network:Network]",
        "cluster  [carepath:cluster:Cluster]",
        "edge  [carepath:edge:Edge]",
        "aws-load-balancer-controller  [carepath:edge:LoadBalancerController]",
        "backend-tls  [carepath:certificates:BackendTls]",
        "carepath-demo  [carepath:namespace:AppNamespace]",
        "monitoring  [carepath:monitoring:Monitoring]",
        "billing-api  [carepath:services:Service]",
        "chat-api  [carepath:services:Service]",
        "triage-api  [carepath:services:Service]",
    ]


def test_the_mesh_comes_after_the_controller_and_the_backend_tls_it_takes(run_stack):
    order = [line.split("  [")[0] for line in top_level(render_tree(run_stack("staging")))]
    assert order.index("aws-load-balancer-controller") < order.index("backend-tls") < order.index("mesh") < order.index("chat-api")


def test_children_follow_the_order_the_component_builds_them(run_stack):
    tree = render_tree(run_stack("demo"))
    cluster = [line for line in subtree(tree, "├── cluster  [carepath:cluster:Cluster]") if line.startswith(("│   ├── ", "│   └── "))]
    names = [line[8:] for line in cluster]
    # The node role before the EKS cluster that names it, the cluster before its node group.
    assert names.index("cluster-node  [aws:iam/role:Role]") < names.index("cluster  [eks:index:Cluster]") < names.index("cluster-nodes  [eks:index:ManagedNodeGroup]")


def test_a_services_registry_and_track_are_under_it(run_stack):
    tree = render_tree(run_stack("demo"))
    service = subtree(tree, "└── chat-api  [carepath:services:Service]")
    assert "    ├── chat-api  [carepath:registry:Registry]" in service
    assert "    │   ├── chat-api  [aws:ecr/repository:Repository]" in service
    assert "    ├── chat-api  [carepath:track:Track]" in service
    assert "    │   └── chat-api  [kubernetes:apps/v1:Deployment]" in service
    assert service.index("    ├── chat-api  [carepath:registry:Registry]") < service.index("    ├── chat-api  [carepath:track:Track]")


def test_each_resource_is_numbered_after_its_parent_in_the_order_it_was_constructed(run_stack):
    plan = run_stack("production")
    by_urn = {r.urn: r for r in plan.resources}
    assert sorted(r.sequence for r in plan.resources) == list(range(len(plan.resources)))
    assert plan.one("pulumi:pulumi:Stack").sequence == 0
    assert all(r.sequence > by_urn[r.parent].sequence for r in plan.managed)


def test_the_count_per_type_matches_the_plan_most_common_first(run_stack):
    plan = run_stack("staging")
    tree = render_tree(plan)
    table = tree[tree.index("Resources by type:\n") :].split("\n\n")[0].splitlines()[1:]
    rows = [line.split() for line in table]
    assert rows[-1] == ["total", str(len(plan.managed))]
    counts = [(type_, int(count)) for type_, count in rows[:-1]]
    assert counts == type_counts(plan)
    assert dict(counts) == {r.type: len(plan.of_type(r.type)) for r in plan.managed}
    assert counts == sorted(counts, key=lambda row: (-row[1], row[0])) and counts[0][1] > counts[-1][1]


def test_the_same_config_prints_the_same_tree_every_run():
    # Fresh runs, not the tests' shared plans: registration order varies with the worker threads.
    trees = {render_tree(harness.run_stack("staging")) for _ in range(3)}
    assert len(trees) == 1
