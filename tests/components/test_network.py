from components.network import ExistingVpc, Network, NetworkArgs


def test_new_vpc_spans_three_zones_with_tagged_public_and_private_subnets(run_component):
    plan = run_component(lambda: Network("network", NetworkArgs(cidr_block="10.0.0.0/16", nat_gateways="single")))
    component = plan.one("carepath:network:Network")
    vpc = plan.one("awsx:ec2:Vpc")
    assert vpc.parent == component.urn
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["numberOfAvailabilityZones"] == 3
    assert vpc.inputs["natGateways"] == {"strategy": "Single"}
    specs = {spec["type"]: spec for spec in vpc.inputs["subnetSpecs"]}
    assert specs["Public"]["tags"] == {"kubernetes.io/role/elb": "1"}
    assert specs["Private"]["tags"] == {"kubernetes.io/role/internal-elb": "1"}
    # Per zone: public /20 and private /19 of a /16, so all six fit in the VPC.
    assert (specs["Public"]["cidrMask"], specs["Private"]["cidrMask"]) == (20, 19)


def test_subnet_masks_follow_a_smaller_vpc(run_component):
    plan = run_component(lambda: Network("network", NetworkArgs(cidr_block="10.8.0.0/18", nat_gateways="onePerAz")))
    vpc = plan.one("awsx:ec2:Vpc")
    assert vpc.inputs["natGateways"] == {"strategy": "OnePerAz"}
    assert sorted(spec["cidrMask"] for spec in vpc.inputs["subnetSpecs"]) == [21, 22]


def test_existing_vpc_creates_nothing_and_passes_its_ids_through(run_component):
    existing = ExistingVpc("vpc-0123456789abcdef0", ["subnet-0aaaaaaa", "subnet-0bbbbbbb"], ["subnet-0ccccccc", "subnet-0ddddddd"])
    outputs = {}

    def build():
        network = Network("network", NetworkArgs(cidr_block="10.0.0.0/16", nat_gateways="single", existing=existing))
        network.private_subnet_ids.apply(lambda ids: outputs.setdefault("private", ids))
        network.vpc_id.apply(lambda vpc: outputs.setdefault("vpc", vpc))

    plan = run_component(build)
    assert [r.type for r in plan.managed] == ["carepath:network:Network"]
    assert outputs == {"private": ["subnet-0ccccccc", "subnet-0ddddddd"], "vpc": "vpc-0123456789abcdef0"}
