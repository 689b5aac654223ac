"""A real single-node Slurm for tests: munged, slurmctld and slurmd on 127.0.0.1, as root.

    with SingleNodeSlurm() as slurm:
        subprocess.run(["sinfo"], env=slurm.env)

No systemd and no cgroups: each daemon runs in the foreground as a child of this process, with its
munge key and socket, state, spool, logs and PID files under one temporary run folder, on free ports
of 127.0.0.1. The config goes where every Slurm command looks, /etc/slurm/slurm.conf (the plugin's
jobstep drops SLURM_CONF before the `srun` inside each job): only when no other file is there, and
it is removed again at the end. Stopping ends only the processes started here.
Without accounting (no slurmdbd): `sacct` does not answer, finished jobs stay visible to `squeue`
for MinJobAge seconds, and the jobcomp file lists every job that ended.

The Slurm executor plugin stays out of the venv (Snakemake imports every installed executor plugin
at start-up, and this one asks the controller for its config, which waits ~10 s when none answers):
`install_plugins()` puts the versions pinned in requirements-slurm.lock into PLUGIN_DIR, which only
the runs that need it put on PYTHONPATH.

    python tests/slurm_cluster.py install   # the Debian packages and the plugins (CI does this)
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_LOCK = REPO / "requirements-slurm.lock"
PLUGIN_DIR = REPO / ".slurm-plugins"
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
PARTITION = "debug"
CONF = Path("/etc/slurm/slurm.conf")
CONF_MARK = "# written by tests/slurm_cluster.py for the run folder "
START_TIMEOUT = 30.0


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here; the message says why."""


def missing_commands() -> list[str]:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin"
    return [command for command in COMMANDS if shutil.which(command, path=path) is None]


def install_packages() -> None:
    """apt-get update, then install Debian's Slurm and munge (root only)."""
    if not missing_commands():
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            f"{', '.join(missing_commands())} not installed, and installing needs root"
        )
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"{', '.join(missing_commands())} not installed, and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def install_plugins() -> Path:
    """The executor plugins pinned in requirements-slurm.lock, in PLUGIN_DIR (kept between runs)."""
    stamp = PLUGIN_DIR / "requirements-slurm.lock"
    if stamp.is_file() and stamp.read_text() == PLUGIN_LOCK.read_text():
        return PLUGIN_DIR
    shutil.rmtree(PLUGIN_DIR, ignore_errors=True)
    # --no-deps: their dependencies are the venv's own (requirements.lock); a second copy here
    # would shadow them.
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
    result = subprocess.run(
        [*command, str(PLUGIN_DIR), "-r", str(PLUGIN_LOCK)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        shutil.rmtree(PLUGIN_DIR, ignore_errors=True)
        raise SlurmUnavailable(f"pip could not install {PLUGIN_LOCK.name}:\n{result.stderr}")
    shutil.copy(PLUGIN_LOCK, stamp)
    return PLUGIN_DIR


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_conf(run: Path, node: str, cpus: int, memory_mb: int) -> str:
    """A single-node slurm.conf: everything under `run`, no accounting, no cgroups."""
    return f"""\
ClusterName=tests
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={run}/munge/munge.socket
StateSaveLocation={run}/state
SlurmdSpoolDir={run}/spool
SlurmctldPidFile={run}/pid/slurmctld.pid
SlurmdPidFile={run}/pid/slurmd.pid
SlurmctldLogFile={run}/log/slurmctld.log
SlurmdLogFile={run}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={run}/log/jobcomp.txt
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def claim_conf(text: str, run: Path) -> None:
    """Write CONF, naming `run` on its first line, unless another Slurm's config stands there.

    A file that a killed test left behind (its slurmctld no longer runs) is replaced."""
    if CONF.exists():
        first = CONF.read_text().partition("\n")[0]
        if not first.startswith(CONF_MARK):
            raise SlurmUnavailable(f"{CONF} exists: this machine has a Slurm of its own")
        owner = Path(first.removeprefix(CONF_MARK))
        if pid_alive(owner / "pid/slurmctld.pid"):
            raise SlurmUnavailable(
                f"{CONF} belongs to a test cluster that still runs (run folder {owner}); "
                f"stop its daemons (PID files in {owner}/pid) and try again"
            )
        CONF.unlink()
    CONF.parent.mkdir(parents=True, exist_ok=True)
    with open(CONF, "x") as conf:
        conf.write(f"{CONF_MARK}{run}\n{text}")


def release_conf(run: Path) -> None:
    if CONF.is_file() and CONF.read_text().startswith(f"{CONF_MARK}{run}\n"):
        CONF.unlink()


def pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def total_memory_mb() -> int:
    with open("/proc/meminfo") as meminfo:
        kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return kib // 1024


class SingleNodeSlurm:
    """Start with `with`; `env` is os.environ without a SLURM_CONF that would lead elsewhere."""

    def __init__(self) -> None:
        self.node = socket.gethostname().split(".")[0]
        self.run: Path | None = None
        self.env: dict[str, str] = {}
        self._daemons: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> "SingleNodeSlurm":
        if os.geteuid() != 0:
            raise SlurmUnavailable("starting munged and slurmd needs root")
        if missing := missing_commands():
            raise SlurmUnavailable(f"not installed: {', '.join(missing)}")
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if any(name == "slurmctld" for name, _ in self._daemons):
            # Jobs outlive slurmd; every job of this cluster was submitted by this test run.
            subprocess.run(["scancel", "--full", "--user", "root"], env=self.env, timeout=10)
        for _, daemon in reversed(self._daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        self._daemons.clear()
        if self.run is not None:
            release_conf(self.run)
            shutil.rmtree(self.run, ignore_errors=True)
            self.run = None

    def log(self, name: str) -> str:
        """The text of one log under the run folder (slurmctld.log, slurmd.log, jobcomp.txt...)."""
        path = self.run / "log" / name
        return path.read_text(errors="replace") if path.is_file() else ""

    def _start(self) -> None:
        # munged wants its socket's folder, and every folder above, open to all.
        self.run = Path(tempfile.mkdtemp(prefix="slurm-run-"))
        self.run.chmod(0o755)
        for sub in ("state", "spool", "log", "pid", "munge"):
            (self.run / sub).mkdir(mode=0o755)
        key = self.run / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        memory = max(512, total_memory_mb() - 1024)
        claim_conf(slurm_conf(self.run, self.node, os.cpu_count() or 1, memory), self.run)
        self.env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}

        munge = self.run / "munge"
        self._spawn(
            "munged",
            "-F",
            f"--key-file={key}",
            f"--socket={munge}/munge.socket",
            f"--pid-file={munge}/munged.pid",
            f"--seed-file={munge}/munged.seed",
            f"--log-file={self.run}/log/munged.log",
        )
        self._wait_for("munged", lambda: (munge / "munge.socket").exists())
        self._spawn("slurmctld", "-D", "-i")
        self._wait_for("slurmctld", lambda: "is UP" in self._output("scontrol", "ping"))
        self._spawn("slurmd", "-D", "-N", self.node)
        self._wait_for("slurmd", lambda: self._output("sinfo", "-h", "-o", "%T") == "idle")

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.run / "log" / f"{name}.out", "wb") as out:
            daemon = subprocess.Popen(
                [shutil.which(name, path="/usr/sbin:/usr/bin"), *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._daemons.append((name, daemon))

    def _output(self, *command: str) -> str:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=10)
        return result.stdout.strip()

    def _wait_for(self, name: str, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            exited = [(n, d.returncode) for n, d in self._daemons if d.poll() is not None]
            if exited or time.monotonic() > deadline:
                why = f"exited: {exited}" if exited else f"not ready after {START_TIMEOUT} s"
                logs = self.log(f"{name}.log")[-2000:] + self.log(f"{name}.out")[-2000:]
                raise SlurmUnavailable(f"{name} did not come up ({why}); its log:\n{logs}")
            time.sleep(0.1)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit(f"usage: {sys.argv[0]} install")
    install_packages()
    print(f"executor plugins in {install_plugins()}")
