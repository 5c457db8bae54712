import pytest

from core.naming import node_ami_type


@pytest.mark.parametrize(
    "instance_type, ami_type",
    [
        ("t3.large", "AL2023_x86_64_STANDARD"),
        ("m6i.large", "AL2023_x86_64_STANDARD"),
        ("m5dn.xlarge", "AL2023_x86_64_STANDARD"),
        ("g5.xlarge", "AL2023_x86_64_STANDARD"),
        ("t4g.large", "AL2023_ARM_64_STANDARD"),
        ("m7g.large", "AL2023_ARM_64_STANDARD"),
        ("c7gn.2xlarge", "AL2023_ARM_64_STANDARD"),
        ("r8gd.large", "AL2023_ARM_64_STANDARD"),
    ],
)
def test_graviton_families_get_the_arm_ami(instance_type, ami_type):
    assert node_ami_type(instance_type) == ami_type
