import ipaddress

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.subnets import subnet_layout


def test_the_default_vpc_is_laid_out_as_awsx_legacy_strategy_lays_it_out():
    # awsx's Legacy layout of these sizes: each zone's /18 starts with its private /19.
    layout = subnet_layout("10.0.0.0/16", 3)
    assert layout.private == ("10.0.0.0/19", "10.0.64.0/19", "10.0.128.0/19")
    assert layout.public == ("10.0.32.0/20", "10.0.96.0/20", "10.0.160.0/20")


@hypothesis_settings(max_examples=200, deadline=None)
@given(prefix=st.integers(16, 20), base=st.integers(0, 2**32 - 1), zones=st.integers(1, 4))
def test_every_subnet_fits_the_vpc_at_its_size_and_none_overlap(prefix, base, zones):
    vpc = ipaddress.IPv4Network((base, prefix), strict=False)
    layout = subnet_layout(str(vpc), zones)
    public = [ipaddress.IPv4Network(block) for block in layout.public]
    private = [ipaddress.IPv4Network(block) for block in layout.private]
    assert len(public) == len(private) == zones
    assert all(block.prefixlen == prefix + 4 for block in public) and all(block.prefixlen == prefix + 3 for block in private)
    blocks = public + private
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
