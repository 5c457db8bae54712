"""Stack settings: the `carepath:` config of one stack, typed, validated, frozen.

`parse(raw, stack, routers=...)` turns the raw config (section name -> JSON value, as Pulumi
holds it) into `Settings`, or raises `SettingsError` listing every problem, each naming its
full key, the value and what is allowed. Nothing here imports Pulumi: `program.load_settings()`
reads the values from the Pulumi runtime, the release driver from the stack file.

By concern: `fields` (one type per kind of value), `service` (`services.<name>`: image, pods,
release, route, promotion), `platform` (cluster, edge, mesh, monitoring), `rules` (rules across keys),
`errors` (how a problem reads), `stack` (`Settings` and `parse`).

Decisions, where the design leaves room:

- Types are strict (config is JSON): `replicas: "2"` is an error, not a 2, and a YAML
  `kubernetesVersion: 1.30` (a float, which would read as "1.3") must be quoted.
  `pulumi config set --path` stores numbers and booleans typed.
- Sections, and the services within `services`, are validated independently, so a typo in
  one never hides an error in another; rules that span sections or services run on every
  section and service that parsed.
- Every service names its strategy; the rest has defaults. A service's router defaults from
  its strategy (`core.routers.default_router`), and `mesh.enabled` unset means: on when a
  service's router needs the mesh (`Settings.mesh_enabled`).
- `cluster.name` defaults to `carepath-<stack>` and a service's repository to
  `carepath-<service>`, so stacks sharing an account do not collide; a repository can be an
  existing one instead (`createRepository: false`).
- Production is the stack named `production`, as the policy pack decides it (not a toggle such
  as `cluster.deletionProtection`, which could opt a stack out): there the settings refuse one
  replica, `maxUnavailable` other than 0, no `edge.certificateArn`, and an API endpoint or test
  listener whose CIDRs together cover every IPv4 address. The pack keeps these as a second line.
- A freeze window's bounds are strings in one of three forms (daily "HH:MM", weekly "ddd HH:MM",
  dated "YYYY-MM-DD HH:MM") in the window's IANA zone, not YAML timestamps, which would lose the
  zone; there is no "24:00" (a window ending at midnight ends at 00:00 and wraps), and a recurring
  window whose end equals its start is refused, as one that never closes.
- CIDR lists are IPv4 only: the ALB's security group rules and EKS's public access list take
  IPv4 blocks, so an IPv6 block (`::/0` the widest) is refused rather than half-applied.
"""

from core.settings.errors import SettingsError
from core.settings.fields import NAMESPACE
from core.settings.platform import ClusterSettings, EdgeSettings, MeshSettings, MonitoringSettings, ReceiverSettings, ThresholdSettings
from core.settings.service import (
    COLOURS,
    STRATEGIES,
    AnalysisSettings,
    ApprovalSettings,
    AutoscalingSettings,
    BlueGreenSettings,
    CanarySettings,
    FreezeSettings,
    HeaderSettings,
    MirrorSettings,
    PromotionSettings,
    RollingSettings,
    RolloutSettings,
    ServiceSettings,
    SignalSettings,
    VerifySettings,
)
from core.settings.stack import SECTIONS, Settings, UnknownService, parse

__all__ = [
    "COLOURS",
    "NAMESPACE",
    "SECTIONS",
    "STRATEGIES",
    "AnalysisSettings",
    "ApprovalSettings",
    "AutoscalingSettings",
    "BlueGreenSettings",
    "CanarySettings",
    "ClusterSettings",
    "EdgeSettings",
    "FreezeSettings",
    "HeaderSettings",
    "MeshSettings",
    "MirrorSettings",
    "MonitoringSettings",
    "PromotionSettings",
    "ReceiverSettings",
    "RollingSettings",
    "RolloutSettings",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "SignalSettings",
    "ThresholdSettings",
    "UnknownService",
    "VerifySettings",
    "parse",
]
