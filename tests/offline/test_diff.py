from offline.diff import diff_plans, render_diff


def test_no_override_means_no_change(run_stack):
    diff = diff_plans(run_stack("staging"), run_stack("staging"))
    assert diff.changes == () and diff.outputs == ()
    assert diff.unchanged == len(run_stack("staging").managed)


def test_node_count_is_an_in_place_update_of_the_node_group_only(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.desiredNodes": 3}))
    [change] = diff.changes
    assert (change.action, change.type) == ("update", "eks:index:ManagedNodeGroup")
    assert [(f.path, f.before, f.after) for f in change.fields] == [("scalingConfig.desiredSize", 2, 3)]


def test_instance_type_change_replaces_the_node_group(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.instanceType": "t4g.large"}))
    [change] = diff.changes
    assert change.action == "replace" and set(change.replace_because) == {"amiType", "instanceTypes"}
    assert "+- replace  cluster-nodes  [eks:index:ManagedNodeGroup]  (replace: amiType, instanceTypes changed)" in render_diff(diff)


def test_using_an_existing_repository_deletes_the_created_one(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"chatApi.createRepository": False}))
    assert {(c.action, c.type) for c in diff.changes} == {
        ("delete", "aws:ecr/repository:Repository"),
        ("delete", "aws:ecr/lifecyclePolicy:LifecyclePolicy"),
    }


def test_renaming_the_cluster_replaces_it_and_shows_the_output_change(run_stack):
    diff = diff_plans(run_stack("demo"), run_stack("demo", {"cluster.name": "carepath-demo-2"}))
    replaced = {c.type for c in diff.of("replace")}
    assert "eks:index:Cluster" in replaced
    assert ("clusterName", "carepath-demo", "carepath-demo-2") in {(f.path, f.before, f.after) for f in diff.outputs}
    assert "Summary:" in render_diff(diff)


def test_an_existing_vpc_deletes_the_created_one_and_moves_the_cluster(run_stack):
    overrides = {
        "cluster.vpcId": "vpc-0123456789abcdef0",
        "cluster.publicSubnetIds": ["subnet-0aaaaaaa", "subnet-0bbbbbbb"],
        "cluster.privateSubnetIds": ["subnet-0ccccccc", "subnet-0ddddddd"],
    }
    diff = diff_plans(run_stack("demo"), run_stack("demo", overrides))
    assert ("delete", "awsx:ec2:Vpc") in {(c.action, c.type) for c in diff.changes}
    cluster = next(c for c in diff.changes if c.type == "eks:index:Cluster")
    assert cluster.action == "replace" and "vpcId" in cluster.replace_because
