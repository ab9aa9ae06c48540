"""labctl benchmark on sandbox hosts: up (cold, warm), verify, down, controller peak memory; the tutorials' way
(one ssh per step, one `docker exec ping` per ordered pair) as the baseline; floor measurements in the same run.

    python bench/run.py                       # sizes 2,4,8 docker hosts x 1,5,20 containers per host
    python bench/run.py --sizes 2x1,8x5       # chosen sizes
    python bench/run.py --sizes 2x1 --no-write --baseline-max-pairs 4    # smoke run
    python bench/run.py --sizes 8x5,16x20 --merge   # re-measure two sizes, keep the other rows of results.json

Needs root (sandbox hosts). Everything runs in the lab `bench` on 198.18.90.0/24 and is removed at the end, also
after a crash of an earlier run. Results: a table on stdout, and docs/benchmarks.md + bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = ROOT / "docs" / "benchmarks.md"   # the page `make bench` writes
sys.path.insert(0, str(ROOT))

from labctl.executors.dockerhost import sandbox_dockerd  # noqa: E402
from labctl.executors.services import Service, SupervisedProcess  # noqa: E402
from labctl.model.inventory import load_inventory  # noqa: E402
from labctl.model.playbook import load_playbook  # noqa: E402
from labctl.plan import daemon  # noqa: E402
from labctl.plan.lab import container_run, network_create  # noqa: E402
from labctl.planes.kvstore.plan import plan_store  # noqa: E402
from labctl.providers import sandbox  # noqa: E402

LAB = "bench"
SUBNET = "198.18.90.0/24"
SIZES_16_MIN_GB = 8.0   # 16 hosts x 20 containers took 2.4 GB here (plus the controller); below this, 16 is left out
TARGETS = {"warm_up_seed_s": 3.0, "verify_8x5_s": 15.0, "up_ratio_8": 5.0, "verify_ratio_8": 10.0}
# verify before fping (issue "verify at scale"): every check a busybox ping inside its source container
BEFORE = ROOT / "bench" / "results-2026-11-24-container-probes.json"


@dataclass
class Row:
    hosts: int
    per_host: int
    containers: int = 0
    pairs: int = 0
    checks: int = 0
    up_cold_s: float = 0.0
    up_warm_s: float = 0.0
    warm_no_changes: bool = False
    verify_s: float = 0.0
    verify_ok: bool = False
    down_s: float = 0.0
    peak_rss_mb: float = 0.0
    lab_mem_gb: float = 0.0     # the machine's MemAvailable before sandbox up minus after the cold up
    base_up_s: float = 0.0
    base_verify_s: float = 0.0
    base_pairs_measured: int = 0
    floor: dict[str, float] = field(default_factory=dict)
    probe: str = "container"      # how verify probed: fping, container, or both (mixed); rows before fping: container
    reprobed: int = 0             # checks verify probed again (a first round that disagreed with the playbook)
    verify_container_s: float = 0.0   # the same verify with --probe container, same run (0: not measured)
    verify_container_ok: bool = False
    verify_rss_mb: float = 0.0    # peak RSS of the labctl process during verify alone
    measured: str = ""            # date of the run that measured this row

    @property
    def checks_per_s(self) -> float:
        return self.checks / self.verify_s if self.verify_s else 0.0

    @property
    def up_ratio(self) -> float:
        return self.base_up_s / self.up_cold_s if self.up_cold_s else 0.0

    @property
    def verify_ratio(self) -> float:
        return self.base_verify_s / self.verify_s if self.verify_s else 0.0

    @property
    def up_floor_s(self) -> float:
        """Lower bound: hosts in parallel, one dockerd restart, then a host's containers one after another."""
        return self.floor.get("dockerd_restart_s", 0) + self.per_host * self.floor.get("container_start_s", 0)

    @property
    def verify_floor_s(self) -> float:
        """Lower bound: everything in parallel: one SSH round trip, one docker exec, one ping."""
        return (self.floor.get("ssh_rtt_s", 0) + self.floor.get("docker_exec_s", 0)
                + self.floor.get("ping_rtt_ms", 0) / 1000)


def run_labctl(env: dict[str, str], *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, peak RSS (MB) of the labctl process itself, and its output."""
    argv = [sys.executable, "-m", "labctl.cli", "-q", *args]
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        res = subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())
    return seconds, usage.ru_maxrss / 1024, res


def must(env: dict[str, str], *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    seconds, rss, res = run_labctl(env, *args)
    if res.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return seconds, rss, res


SEED_SUBNET = "198.18.91.0/24"
PB = ROOT / "playbooks"
SEED_PLAYBOOKS = {"kvstore": PB / "seed-overlay.yaml",        # cluster store (etcd)
                  "swarm": PB / "seed-overlay-swarm.yaml",    # swarm mode, no dockerd restart
                  "vxlan": PB / "seed-overlay-vxlan.yaml",    # labctl's own VXLAN devices
                  "kvstore-consul": PB / "seed-overlay-consul.yaml"}   # the tutorials' Consul
# One seed row per engine and plane that can carry the lab (engine: the inventory's `engine:` of both docker hosts;
# system = this machine's own, Debian 12's docker.io 20.10.24).
SEEDS = {"system/kvstore": ("system", "kvstore"), "system/swarm": ("system", "swarm"),
         "system/vxlan": ("system", "vxlan"), "debian-11/kvstore-consul": ("debian-11", "kvstore-consul"),
         "debian-13/swarm": ("debian-13", "swarm"), "debian-13/vxlan": ("debian-13", "vxlan")}


def measure_seeds(work: Path) -> dict[str, dict[str, float]]:
    return {key: measure_seed(work, key) for key in SEEDS}


def measure_seed(work: Path, key: str = "system/kvstore", warm_runs: int = 3) -> dict[str, float]:
    """The seed lab (2 docker hosts, overlay + macvlan, 4 containers) on one engine and control plane: cold up, warm
    up (median of `warm_runs`), verify, down, on fresh sandbox hosts of its own (lab `benchseed`)."""
    engine, plane = SEEDS[key]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    inv = work / "benchseed.yaml"
    inv.write_text(f"name: benchseed\nprovider: sandbox\nengine: {engine}\nunderlay: {{subnet: {SEED_SUBNET}}}\n"
                   "hosts:\n  store: {roles: [store]}\n  node1: {roles: [docker]}\n  node2: {roles: [docker]}\n")
    lab = ("-i", str(inv), "-p", str(SEED_PLAYBOOKS[plane]))
    must(env, "sandbox", "down", "-i", str(inv))
    must(env, "sandbox", "up", "-i", str(inv))
    try:
        cold = must(env, "up", *lab)[0]
        warm = [must(env, "up", *lab)[0] for _ in range(warm_runs)]
        verdict = work / f"seed-{key.replace('/', '-')}.json"
        verify_s, _, res = run_labctl(env, "verify", *lab, "--json", str(verdict))
        modes = set(json.loads(verdict.read_text())["probe"]["modes"].values()) if verdict.exists() else set()
        verify_container_s, _, res_container = run_labctl(env, "verify", *lab, "--probe", "container")
        down = must(env, "down", *lab)[0]
    finally:
        run_labctl(env, "sandbox", "down", "-i", str(inv))
    return {"up_cold_s": cold, "up_warm_s": statistics.median(warm), "up_warm_max_s": max(warm),
            "verify_s": verify_s, "verify_ok": float(res.returncode == 0), "down_s": down,
            "probe": "/".join(sorted(modes)) or "?", "verify_container_s": verify_container_s,
            "verify_container_ok": float(res_container.returncode == 0)}


def seed_line(seeds: dict) -> str:
    if not seeds:
        return "Seed lab: not measured (--no-seed)."
    if "up_cold_s" in seeds:  # results.json of an older run: the cluster-store lab only
        seeds = {"kvstore": seeds}
    lines = []
    for key, seed in seeds.items():
        engine, plane = SEEDS.get(key, ("system", key))   # results of older runs: keyed by plane only
        lines.append(f"Seed lab, engine {engine}, {plane} ({SEED_PLAYBOOKS[plane].relative_to(ROOT)}, sandbox hosts): "
                     "cold `up` "
                     f"{seed['up_cold_s']:.1f}s, warm `up` {seed['up_warm_s']:.1f}s (median of 3, max "
                     f"{seed['up_warm_max_s']:.1f}s; target < 3 s), `verify` {seed['verify_s']:.1f}s "
                     f"({'all passing' if seed['verify_ok'] else 'MISMATCHES'}; probe {seed.get('probe', 'container')}"
                     + (f"; --probe container {seed['verify_container_s']:.1f}s"
                        f"{'' if seed.get('verify_container_ok') else ' MISMATCHES'}"
                        if seed.get("verify_container_s") else "")
                     + f"), `down` {seed['down_s']:.1f}s.")
    return "\n\n".join(lines)


class Bench:
    def __init__(self, work: Path, hosts: int, per_host: int) -> None:
        self.work = work
        self.hosts, self.per_host = hosts, per_host
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.inventory = work / "bench.yaml"
        self.playbook = work / "bench-lab.yaml"
        self.write_files()

    def write_files(self) -> None:
        nodes = [f"node{i}" for i in range(1, self.hosts + 1)]
        inv = [f"name: {LAB}", "provider: sandbox", f"underlay: {{subnet: {SUBNET}}}", "hosts:",
               "  store: {roles: [store]}", *[f"  {n}: {{roles: [docker]}}" for n in nodes]]
        self.inventory.write_text("\n".join(inv) + "\n")
        pb = [f"name: {LAB}", "store: {backend: etcd}", "docker0: {bip: auto}", "networks:",
              "  ov: {driver: overlay, subnet: 172.30.0.0/16}", "containers:"]
        pb += [f"  b{h}c{i}: {{host: {n}, networks: [ov]}}" for h, n in enumerate(nodes, 1)
               for i in range(1, self.per_host + 1)]
        self.playbook.write_text("\n".join(pb) + "\n")

    # -------------------------------------------------------------- helpers

    def labctl(self, *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
        return run_labctl(self.env, *args)

    def must(self, *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
        return must(self.env, *args)

    def ssh(self, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One new OpenSSH connection per command, as a person (or a tutorial's script) does."""
        cfg = sandbox.paths_for(LAB).ssh_config
        res = subprocess.run(["ssh", "-F", str(cfg), host, command], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=300)
        if check and res.returncode != 0:
            raise SystemExit(f"ssh {host} {command!r} failed: {res.stderr}")
        return res

    # -------------------------------------------------------------- phases

    def run(self, baseline_max_pairs: int, compare_max_checks: int = 0) -> Row:
        row = Row(self.hosts, self.per_host, containers=self.hosts * self.per_host)
        n = row.containers
        row.pairs = n * (n - 1)
        os.environ["LABCTL_STATE_DIR"] = self.env.get("LABCTL_STATE_DIR", "/var/lib/labctl-sandbox")
        self.must("sandbox", "down", "-i", str(self.inventory))
        free_before = available_gb()
        self.must("sandbox", "up", "-i", str(self.inventory))
        try:
            rss = []
            row.up_cold_s, r, _ = self.must("up", "-i", str(self.inventory), "-p", str(self.playbook))
            row.lab_mem_gb = free_before - available_gb()
            rss.append(r)
            row.up_warm_s, r, res = self.must("up", "-i", str(self.inventory), "-p", str(self.playbook))
            rss.append(r)
            row.warm_no_changes = "no changes" in res.stdout
            verdict_file = self.work / "verify.json"
            row.verify_s, r, res = self.labctl("verify", "-i", str(self.inventory), "-p", str(self.playbook),
                                               "--json", str(verdict_file))
            rss.append(r)
            row.verify_rss_mb = r
            data = json.loads(verdict_file.read_text())
            row.checks, row.verify_ok = data["summary"]["total"], data["ok"]
            modes = set(data["probe"]["modes"].values())
            row.probe = modes.pop() if len(modes) == 1 else "mixed"
            row.reprobed = data["probe"]["reprobed"]
            row.measured = time.strftime("%Y-%m-%d", time.gmtime())
            if row.checks <= compare_max_checks:
                row.verify_container_s, r, res = self.labctl("verify", "-i", str(self.inventory), "-p",
                                                             str(self.playbook), "--probe", "container")
                row.verify_container_ok = res.returncode == 0
                rss.append(r)
            rtts = [c["rtt_ms"] for c in data["checks"] if c["rtt_ms"] is not None and c["src_host"] != c["dst_host"]]
            row.floor["ping_rtt_ms"] = statistics.median(rtts) if rtts else 0.0
            self.measure_ssh(row)
            row.down_s, r, _ = self.must("down", "-i", str(self.inventory), "-p", str(self.playbook))
            rss.append(r)
            row.peak_rss_mb = max(rss)
            self.measure_floor(row)
            row.base_up_s = self.baseline_up()
            row.base_verify_s, row.base_pairs_measured = self.baseline_verify(baseline_max_pairs)
        finally:
            self.labctl("sandbox", "down", "-i", str(self.inventory))
        return row

    def measure_ssh(self, row: Row) -> None:
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            self.ssh("node1", "true")
            times.append(time.monotonic() - t0)
        row.floor["ssh_rtt_s"] = statistics.median(times)
        out = self.ssh("node1", "s=$(date +%s.%N); docker exec b1c1 true; e=$(date +%s.%N); echo $s $e").stdout
        start, end = map(float, out.split())
        row.floor["docker_exec_s"] = end - start

    def measure_floor(self, row: Row) -> None:
        """On a host with no lab: one dockerd restart and one container start, timed on the host itself."""
        svc = sandbox_dockerd(LAB, "node1")
        mgr = SupervisedProcess()
        restart = (f"s=$(date +%s.%N); start-stop-daemon --stop --pidfile {mgr.pidfile(svc)} --retry TERM/30/KILL/5 "
                   f"--remove-pidfile >/dev/null; {mgr.start_command(svc)}; "
                   "until docker info >/dev/null 2>&1; do sleep 0.05; done; e=$(date +%s.%N); echo $s $e")
        start, end = map(float, self.ssh("node1", restart).stdout.split())
        row.floor["dockerd_restart_s"] = end - start
        run = ("s=$(date +%s.%N); docker run -d --name floor1 --init labctl/busybox:latest sleep 60 >/dev/null; "
               "e=$(date +%s.%N); docker rm -f floor1 >/dev/null; echo $s $e")
        start, end = map(float, self.ssh("node1", run).stdout.split())
        row.floor["container_start_s"] = end - start

    def baseline_up(self) -> float:
        """The tutorials' way, one ssh per step, one step after another: store, each daemon, network, containers."""
        inv = load_inventory(str(self.inventory))
        pb = load_playbook(str(self.playbook), inv)
        assert pb.store is not None
        mgr = SupervisedProcess()
        store = plan_store(pb.store, pb.name)
        t0 = time.monotonic()
        store_svc = Service(store.backend, argv=store.argv)
        self.ssh("store", f"mkdir -p {pb.store.data_dir} && {mgr.start_command(store_svc)}")
        self.ssh("store", store.wait_healthy())
        for h in inv.docker_hosts:
            config = json.dumps(daemon.desired_keys(inv, pb, h.name))
            svc = sandbox_dockerd(LAB, h.name)
            self.ssh(h.name, f"echo {shlex.quote(config)} > /etc/docker/daemon.json")
            self.ssh(h.name, f"start-stop-daemon --stop --pidfile {mgr.pidfile(svc)} --retry TERM/30/KILL/5 "
                             f"--remove-pidfile; {mgr.start_command(svc)}")
            self.ssh(h.name, "until docker info >/dev/null 2>&1; do sleep 0.1; done")
        first = inv.docker_hosts[0].name
        self.ssh(first, network_create(pb, pb.networks[0], first))
        for c in pb.containers:
            self.ssh(c.host, container_run(pb, c))
        return time.monotonic() - t0

    def baseline_verify(self, max_pairs: int) -> tuple[float, int]:
        """One `docker exec SRC ping -c1 DST` per ordered pair, one after another; capped, then extrapolated."""
        inv = load_inventory(str(self.inventory))
        pb = load_playbook(str(self.playbook), inv)
        pairs = [(a, b) for a in pb.containers for b in pb.containers if a.name != b.name]
        measured = pairs[:max_pairs] if max_pairs else pairs
        t0 = time.monotonic()
        for a, b in measured:
            self.ssh(a.host, f"docker exec {a.name} ping -c1 -W2 {b.name}", check=False)
        elapsed = time.monotonic() - t0
        return elapsed * len(pairs) / max(1, len(measured)), len(measured)


def machine() -> dict[str, str]:
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "0")
    docker = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": str(os.cpu_count()), "memory_gb": f"{int(mem) / 1024 / 1024:.1f}", "kernel": platform.release(),
            "os": platform.platform(), "python": platform.python_version(), "dockerd": docker,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


HEADER = ("size", "ctrs", "pairs", "checks", "up cold", "up warm", "verify", "probe", "re-probed", "checks/s", "down",
          "peak MB", "lab GB", "base up", "base verify", "up x", "verify x", "up floor", "verify floor", "measured")


def cells(r: Row) -> tuple[str, ...]:
    base_v = f"{r.base_verify_s:.1f}s" + ("*" if r.base_pairs_measured < r.pairs else "")
    return (f"{r.hosts}x{r.per_host}", str(r.containers), str(r.pairs), str(r.checks), f"{r.up_cold_s:.1f}s",
            f"{r.up_warm_s:.1f}s" + ("" if r.warm_no_changes else "!"), f"{r.verify_s:.1f}s" +
            ("" if r.verify_ok else "!"), r.probe, str(r.reprobed), f"{r.checks_per_s:.0f}", f"{r.down_s:.1f}s",
            f"{r.peak_rss_mb:.0f}", f"{r.lab_mem_gb:.1f}",
            f"{r.base_up_s:.1f}s", base_v, f"{r.up_ratio:.1f}", f"{r.verify_ratio:.1f}", f"{r.up_floor_s:.1f}s",
            f"{r.verify_floor_s:.2f}s", r.measured or "2026-11-24")


def load_rows(path: Path) -> list[Row]:
    if not path.exists():
        return []
    fields = set(Row.__dataclass_fields__)
    return [Row(**{k: v for k, v in r.items() if k in fields}) for r in json.loads(path.read_text())["rows"]]


def before_after(rows: list[Row]) -> str:
    """verify per size: the container pings of 2026-11-24 next to this run (and the same run's --probe container,
    where measured)."""
    before = {(r.hosts, r.per_host): r for r in load_rows(BEFORE)}
    lines = ["| size | checks | verify 2026-11-24 (pings in containers) | verify now | probe | x faster | "
             "same run, --probe container | peak MB before / now |", "|" + "---|" * 8]
    for r in rows:
        old = before.get((r.hosts, r.per_host))
        if old is None or not r.measured:   # a row of the old run itself
            continue
        same = (f"{r.verify_container_s:.1f}s" + ("" if r.verify_container_ok else "!")
                if r.verify_container_s else "not measured")
        lines.append(f"| {r.hosts}x{r.per_host} | {r.checks} | {old.verify_s:.1f}s | {r.verify_s:.1f}s"
                     f"{'' if r.verify_ok else '!'} | {r.probe} | {old.verify_s / r.verify_s:.1f} | {same} | "
                     f"{old.peak_rss_mb:.0f} / {r.peak_rss_mb:.0f}"
                     + (f" (verify alone {r.verify_rss_mb:.0f})" if r.verify_rss_mb else "") + " |")
    return "\n".join(lines) if len(lines) > 2 else "(no size re-measured since 2026-11-24)"


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_results(rows: list[Row], info: dict[str, str], seed: dict) -> None:
    (ROOT / "bench" / "results.json").write_text(json.dumps(
        {"machine": info, "seed": seed, "rows": [asdict(r) | {"checks_per_s": r.checks_per_s, "up_ratio": r.up_ratio,
                                                  "verify_ratio": r.verify_ratio, "up_floor_s": r.up_floor_s,
                                                  "verify_floor_s": r.verify_floor_s} for r in rows]}, indent=2) + "\n")
    about = ROOT / "bench" / "ABOUT.md"
    text = ["# Benchmarks", "", "Written by `make bench` (bench/run.py) from bench/results.json: the introduction is "
            "bench/ABOUT.md, the analysis at the end bench/ANALYSIS.md.", "",
            about.read_text() if about.exists() else "", "## Results", "",
            "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
            seed_line(seed), "", table(rows), "", LEGEND, "", "## verify before and after the fping probes", "",
            before_after(rows), "", BEFORE_AFTER_LEGEND, ""]
    analysis = ROOT / "bench" / "ANALYSIS.md"
    if analysis.exists():
        text.append(analysis.read_text())
    RESULTS_PAGE.write_text("\n".join(text) + "\n")


LEGEND = """Columns: `up cold` = `labctl up` on fresh sandbox hosts with dockerd running and no lab
(store start, daemon.json, dockerd restarts, network, containers); `up warm` = second `up` (`!` if it reported
changes); `verify` = full matrix (`!` if any check failed); `checks` = ordered pairs x 2 (by IP and by name), plus
one whole packet per ordered host pair across the overlay (since 2026-12-02);
`peak MB` = the largest max RSS of the labctl process over up/verify/down; `lab GB` = the machine's available memory
before `sandbox up` minus after the cold `up` (all hosts, dockerds, containers); `base up` / `base verify` = the
tutorials' way, one new `ssh` per step / per ordered pair, sequential (`*` = measured on the first N pairs and
extrapolated linearly); `up x` / `verify x` = baseline / labctl; floors: `up floor` = one dockerd restart +
(containers per host x one container start), `verify floor` = one SSH round trip + one docker exec + one ping
RTT, all measured in the same run; `probe` = how verify probed (fping: from the host into each container's
namespace; container: a busybox ping per check inside the container); `re-probed` = checks probed again because the
first round disagreed with the playbook; `measured` = the run's date (with --merge, rows of other sizes are kept
from earlier runs)."""

BEFORE_AFTER_LEGEND = """Before: bench/results-2026-11-24-container-probes.json (the run of 2026-11-24, every check a
`ping` inside its source container). Now: the rows above. `x faster` = before / now. `same run, --probe container`
= the old way measured right after, on the same lab, where the size has at most --compare-max-checks checks (`!`:
some check failed). Targets of the issue: 16 x 20 under 90 s, 8 x 5 under 3 s, the seed lab under 2 s, peak memory
at 16 x 20 under 769 MB."""


def available_gb() -> float:
    kb = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemAvailable")), "0")
    return int(kb) / 1024 / 1024


def default_sizes() -> list[tuple[int, int]]:
    """2, 4, 8 docker hosts (16 if memory allows) x 1, 5, 20 containers per host."""
    hosts = (2, 4, 8, 16) if available_gb() >= SIZES_16_MIN_GB else (2, 4, 8)
    return [(h, c) for h in hosts for c in (1, 5, 20)]


def rewrite_results() -> int:
    data = json.loads((ROOT / "bench" / "results.json").read_text())
    rows = load_rows(ROOT / "bench" / "results.json")
    write_results(rows, data["machine"], data.get("seed", {}))
    print(f"{RESULTS_PAGE.relative_to(ROOT)} rewritten from bench/results.json ({len(rows)} sizes)")
    return 0


def merged(rows: list[Row], kept: list[Row]) -> list[Row]:
    """This run's rows, and the kept rows of the sizes it did not measure, in size order."""
    sizes = {(r.hosts, r.per_host) for r in rows}
    return sorted(rows + [r for r in kept if (r.hosts, r.per_host) not in sizes], key=lambda r: (r.hosts, r.per_host))


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        h, _, c = part.partition("x")
        sizes.append((int(h), int(c)))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None,
                        help="e.g. 2x1,4x5,8x20 (default: 2,4,8 hosts, 16 if memory allows, x 1,5,20 containers)")
    parser.add_argument("--baseline-max-pairs", type=int, default=100,
                        help="baseline verify: measure at most this many pairs, extrapolate the rest (0: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/ files alone")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed lab's up/verify/down figures")
    parser.add_argument("--seed-only", action="store_true",
                        help="measure only the seed lab and store it in bench/results.json (then --rewrite)")
    parser.add_argument("--rewrite", action="store_true",
                        help="measure nothing: rebuild docs/benchmarks.md from bench/results.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of bench/results.json for sizes this run does not measure")
    parser.add_argument("--compare-max-checks", type=int, default=5000,
                        help="also time verify --probe container where a size has at most this many checks")
    parser.add_argument("--lab", default=LAB, help="sandbox lab name (default %(default)s)")
    parser.add_argument("--subnet", default=SUBNET, help="its underlay subnet (default %(default)s)")
    args = parser.parse_args()
    if args.rewrite:
        return rewrite_results()
    globals().update(LAB=args.lab, SUBNET=args.subnet)  # one lab per run; the helpers read these
    if os.geteuid() != 0:
        print("bench needs root (sandbox hosts)", file=sys.stderr)
        return 2
    if args.seed_only:
        with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
            seed = measure_seeds(Path(tmp))
        print(seed_line(seed))
        path = ROOT / "bench" / "results.json"
        if not args.no_write and path.exists():
            path.write_text(json.dumps(json.loads(path.read_text()) | {"seed": seed}, indent=2) + "\n")
            return rewrite_results()
        return 0
    info = machine()
    sizes = args.sizes or default_sizes()
    rows: list[Row] = []
    previous = ROOT / "bench" / "results.json"
    kept = load_rows(previous) if args.merge else []
    kept_seed = json.loads(previous.read_text()).get("seed", {}) if args.merge and previous.exists() else {}
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        seed = {} if args.no_seed else measure_seeds(Path(tmp))
        print(seed_line(seed), file=sys.stderr, flush=True)
        for hosts, per_host in sizes:
            print(f"--- {hosts} docker hosts x {per_host} containers", file=sys.stderr, flush=True)
            rows.append(Bench(Path(tmp), hosts, per_host).run(args.baseline_max_pairs, args.compare_max_checks))
            print(table(rows[-1:]), file=sys.stderr, flush=True)
            if not args.no_write:  # after each size: a long run stopped half-way keeps what it measured
                write_results(merged(rows, kept), info | {"sizes run": f"{len(rows)} of {len(sizes)}"},
                              seed or kept_seed)
    print(seed_line(seed))
    print(table(rows))
    print("\n" + LEGEND)
    return 0


if __name__ == "__main__":
    sys.exit(main())
