"""A real Prometheus for rehearsals: Debian's `prometheus` on loopback, with a throwaway data
directory, scraping the given targets until the `with` block ends.

Real, not mocked, so a rehearsal exercises the same PromQL (staleness, counter resets,
`histogram_quantile`, NaN) the driver meets in a cluster.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

ENSURE_PROMETHEUS = Path(__file__).resolve().parent.parent / "scripts" / "ensure-prometheus"
READY_SECONDS = 30.0
STOP_SECONDS = 10.0
# The scrape job. The synthetic services' own series keep the `job` they carry, their track's
# Service name, as in a cluster; this one goes to `up` and to their pods' Kubernetes series.
JOB = "rehearsal"


def free_port() -> int:
    """A TCP port free on loopback now (Prometheus takes its address as a flag, not a socket)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def installed(command: str) -> str:
    """The path of `prometheus` or `promtool` (the rule tests'); installed once through the project's
    script when missing."""
    found = shutil.which(command)
    if found is None:
        subprocess.run([str(ENSURE_PROMETHEUS)], check=False)
        found = shutil.which(command)
    if found is None:
        raise RuntimeError(
            f"{command} is not installed: install Debian's `prometheus` package "
            "(`apt-get install prometheus`, as root), which scripts/ensure-prometheus does when it can"
        )
    return found


def _config(targets: Sequence[str], scrape_interval: str, evaluation_interval: str, rule_files: Sequence[Path]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                # The exporter's own namespace/job/pod/container labels win over any target labels.
                "honor_labels": True,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _log_tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prometheus exited with status {process.returncode} before it was ready:\n{_log_tail(log)}")
        try:
            if _get(f"{url}/-/ready", timeout=1.0)[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"Prometheus was not ready at {url} after {READY_SECONDS:.0f} s:\n{_log_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_prometheus(
    targets: list[str],
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> Iterator[str]:
    """Prometheus scraping `targets` (`host:port`, scrape job `JOB`), listening on 127.0.0.1 only;
    yields its base URL. Stopped, and its data removed, when the block ends."""
    binary = installed("prometheus")
    with tempfile.TemporaryDirectory(prefix="rehearsal-prometheus-") as tmp:
        directory = Path(tmp)
        config = directory / "prometheus.yml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps(_config(targets, scrape_interval, evaluation_interval, rule_files), indent=2))
        address = f"127.0.0.1:{free_port()}"
        log = directory / "prometheus.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--web.listen-address={address}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://{address}"
            _wait_ready(process, url, log)
            yield url
        finally:
            _stop(process)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result: `[{"metric": {...}, "value": [time, "text"]}, ...]`."""
    status, body = _get(f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    answer = json.loads(body)
    if status != 200 or answer.get("status") != "success":
        raise RuntimeError(f"{promql}: {answer.get('errorType')}: {answer.get('error')}")
    return answer["data"]["result"]


def wait_for_series(url: str, metric: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Wait until Prometheus has scraped `metric` (any PromQL selector), so a release does not
    start judging before the first scrape; returns the series."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(url, metric)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"no series for {metric} at {url} after {timeout:g} s")
        time.sleep(0.2)
