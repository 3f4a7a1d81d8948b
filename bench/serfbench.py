#!/usr/bin/env python3
# Side-by-side benchmark of werify against HashiCorp Serf on loopback (127.0.0.x, or the
# /24 that --net names).
# Started by bench/compare-serf.sh, which builds werify, checks the prerequisites and is the
# last line of defence for cleanup (it kills every PID this program records in its PID file
# and removes the nftables table). This program starts N agents of one system at a time,
# alternating Serf and werify, and measures for each run:
#   join convergence, fan-out (serf query vs werify ctl operation --wait), failure detection
#   after kill -9, RSS per node, CPU seconds and bytes sent per node over an idle window.
# Then it prints medians per system and the ratio werify/Serf, and writes the raw samples
# as JSON. Every wait is bounded; every process it starts is killed by PID.

import argparse
import datetime
import json
import math
import os
import re
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import deque

SERF_PORT = 7946
# The first three bytes of every node's address (--net).
NET = "127.0.0"


def node_ip(k):
    """Node k's address: NET.k for k up to 250, then on in the next /24s (NET's third
    byte plus one for every 250 nodes), so N may pass 254."""
    a, b, c = NET.split(".")
    block, host = divmod(k - 1, 250)
    return f"{a}.{b}.{int(c) + block}.{host + 1}"
SERF_RPC_PORT = 7373
JOIN_CPU_WINDOW = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Every process we start, by PID, so that stop_all() and the shell trap can end them.
_children = {}
_children_lock = threading.Lock()
_pidfile = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(cmd, stdout, stderr=subprocess.STDOUT, env=None, text=False, record=True,
          stdin=subprocess.DEVNULL):
    """Starts a process and remembers it for stop_all(). Long-lived ones (agents, nodes) are
    also written to the PID file that the shell trap reads; short CLI calls are bounded by
    their own timeouts instead."""
    p = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env, text=text)
    with _children_lock:
        _children[p.pid] = p
        if record and _pidfile:
            with open(_pidfile, "a") as f:
                f.write(f"{p.pid}\n")
    return p


def kill_child(p, sig=signal.SIGKILL):
    """Ends one process we started, by its PID, and reaps it."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    with _children_lock:
        _children.pop(p.pid, None)


def stop_all():
    with _children_lock:
        procs = list(_children.values())
    for p in procs:
        kill_child(p)


def forget(p):
    with _children_lock:
        _children.pop(p.pid, None)


def _finish(p):
    """Lets a CLI that already printed its report exit on its own (reads what is left so it
    never writes into a closed pipe), kills it after 10 s."""
    try:
        p.stdout.read()
        p.wait(timeout=10)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        kill_child(p)
    finally:
        p.stdout.close()
        forget(p)


def poll_cmd(cmd, done_line=None, timeout=10, env=None):
    """Runs a CLI that prints a report, the same way for both systems. Returns (stdout, seconds
    until the report was complete, exit code or None). The report is complete at the first
    line `done_line` accepts, or at end of output. A CLI still running then (werify ctl waits
    for its QUIC connection to drain after printing) is reaped in the background, so the drain
    neither counts in the time nor holds up the next poll."""
    t0 = time.monotonic()
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
              record=False)
    guard = threading.Timer(timeout, kill_child, [p])
    guard.daemon = True
    guard.start()
    lines = []
    for line in p.stdout:
        lines.append(line)
        if done_line is not None and done_line(line):
            break
    dt = time.monotonic() - t0
    guard.cancel()
    rc = p.poll()
    if rc is None:
        threading.Thread(target=_finish, args=(p,), daemon=True).start()
    else:
        p.stdout.close()
        forget(p)
    return "".join(lines), dt, rc


# ----------------------------------------------------------------------------------------
# /proc readings


def rss_kb(pid, field="VmRSS"):
    """VmRSS (or another /proc/PID/status field, e.g. RssAnon) in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kb(pid):
    """Proportional set size: shared pages (the binary's text, mapped by every node on this
    machine) divided among the processes that map them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tcp_established_by_ip(port):
    """Established TCP connections in this network namespace with `port` at either end,
    counted for the local address: {dotted IPv4: count}."""
    counts = {}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, st = fields[1], fields[2], fields[3]
                if st != "01":
                    continue
                lip, lport = local.split(":")
                _, rport = remote.split(":")
                if int(lport, 16) != port and int(rport, 16) != port:
                    continue
                ip = socket.inet_ntoa(struct.pack("<I", int(lip, 16)))
                counts[ip] = counts.get(ip, 0) + 1
    except OSError:
        pass
    return counts


def cpu_ticks(pid):
    """utime + stime of a process (all threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # After "pid (comm) ", field 3 (state) is index 0; utime = field 14, stime = field 15.
    return int(fields[11]) + int(fields[12])


# ----------------------------------------------------------------------------------------
# nftables byte counters: one rule pair per node address on the output hook, so loopback
# traffic is counted once, when it is sent. Only the system's own port is counted (as source
# port, or as destination port for connections a node opens from an ephemeral port), so other
# programs on 127.0.0.x and the CLI's RPC port do not count.


class ByteCounters:
    def __init__(self, table, n, port):
        self.table = table
        self.n = n
        self.port = port

    def __enter__(self):
        lines = [
            f"table inet {self.table} {{",
            "  chain out {",
            "    type filter hook output priority 0; policy accept;",
        ]
        for k in range(1, self.n + 1):
            a = node_ip(k)
            lines.append(f"    ip saddr {a} meta l4proto {{ tcp, udp }} th sport {self.port} "
                         f"counter comment \"n{k}\"")
            lines.append(f"    ip saddr {a} meta l4proto {{ tcp, udp }} th sport != {self.port} "
                         f"th dport {self.port} counter comment \"n{k}\"")
        lines += ["  }", "}"]
        r = subprocess.run(["nft", "-f", "-"], input="\n".join(lines) + "\n", text=True,
                           capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"nft could not create table {self.table}: {r.stderr.strip()} "
                               "(run as root with nftables installed)")
        return self

    def read(self):
        """Returns {node index: (packets, bytes)}."""
        r = subprocess.run(["nft", "-j", "list", "table", "inet", self.table],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nft list table {self.table} failed: {r.stderr.strip()}")
        out = {}
        for item in json.loads(r.stdout).get("nftables", []):
            rule = item.get("rule")
            if not rule:
                continue
            k = int(rule.get("comment", "n0")[1:])
            for e in rule.get("expr", []):
                if "counter" in e:
                    pk, by = out.get(k, (0, 0))
                    out[k] = (pk + e["counter"]["packets"], by + e["counter"]["bytes"])
        return out

    def __exit__(self, *exc):
        subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)


# ----------------------------------------------------------------------------------------
# The two systems, behind one interface.


class Serf:
    name = "serf"
    port = SERF_PORT

    def __init__(self, n, work, run_no):
        self.n = n
        self.work = os.path.join(work, f"serf-run{run_no}")
        os.makedirs(self.work)
        self.procs = {}

    def ip(self, k):
        return node_ip(k)

    def rpc(self, k):
        return f"{self.ip(k)}:{SERF_RPC_PORT}"

    def start(self, k, join=None):
        logf = open(os.path.join(self.work, f"serf-n{k}.log"), "w")
        self.procs[k] = spawn([
            "serf", "agent", "-node", f"n{k}", "-bind", f"{self.ip(k)}:{SERF_PORT}",
            "-rpc-addr", self.rpc(k), "-profile", "lan",
            "-event-handler", "query:check=test -e /etc/hosts && echo ok",
        ] + ([] if join is None else ["-join", f"{self.ip(join)}:{SERF_PORT}"]), stdout=logf)
        logf.close()

    def member_key(self, k):
        return f"n{k}"

    def ready_socket(self, k):
        """The socket that is bound once agent k can answer a CLI: its RPC port."""
        return self.ip(k), SERF_RPC_PORT, "tcp"

    def ready(self, k):
        count, _ = self.alive_count(k)
        return count

    def join_cmd(self, k):
        return ["serf", "join", "-rpc-addr", self.rpc(k), f"{self.ip(1)}:{SERF_PORT}"]

    def add_cmd(self, k):
        """Node 1 brings node k in (the one-after-another pattern): `serf join` on node 1."""
        return ["serf", "join", "-rpc-addr", self.rpc(1), f"{self.ip(k)}:{SERF_PORT}"]

    def batch_cmd(self, ks):
        """Node 1 brings every node of `ks` in with one command: one `serf join` naming them
        all. Returns (argv, stdin text)."""
        return (["serf", "join", "-rpc-addr", self.rpc(1)]
                + [f"{self.ip(k)}:{SERF_PORT}" for k in ks], None)

    def join_ok(self, rc, out, err):
        return rc == 0

    def poll_argv(self, k):
        return ["serf", "members", "-rpc-addr", self.rpc(k), "-status", "alive"]

    def alive_count(self, k):
        """`serf members -status alive` on node k: number of members listed, or None."""
        out, dt, rc = poll_cmd(self.poll_argv(k))
        if rc != 0:
            return None, dt
        return len([line for line in out.splitlines() if line.strip()]), dt

    def states(self, k):
        """Every member's state as node k sees it: {member key: 'alive'|'suspect'|'dead'|...}."""
        out, dt, rc = poll_cmd(["serf", "members", "-rpc-addr", self.rpc(k), "-format", "json"])
        if rc != 0:
            return None, dt
        try:
            members = json.loads(out)["members"]
        except (ValueError, KeyError):
            return None, dt
        norm = {"failed": "dead"}
        return {m["name"]: norm.get(m["status"], m["status"]) for m in members}, dt

    def peer_connections(self, nodes):
        """Established TCP connections on the gossip port, per agent (its gossip is UDP;
        the CLIs use the RPC port, so the sweep's polls are not counted)."""
        tcp = tcp_established_by_ip(self.port)
        return [tcp.get(self.ip(k), 0) for k in nodes]

    def fanout(self, ops_file, coordinator=1):
        """`serf query check` from one node, read line by line with timestamps. Returns
        (seconds to the N-th response or None, responses, seconds until the CLI exited or was
        stopped)."""
        t0 = time.monotonic()
        p = spawn(["serf", "query", "-rpc-addr", self.rpc(coordinator), "check"],
                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, record=False)
        guard = threading.Timer(60, kill_child, [p])
        guard.daemon = True
        guard.start()
        responses = set()
        t_nth = None
        self.last_dispatch_s = None
        try:
            for raw in p.stdout:
                line = raw.decode(errors="replace")
                if line.startswith("Query ") and self.last_dispatch_s is None:
                    self.last_dispatch_s = time.monotonic() - t0
                m = re.match(r"Response from '([^']+)': ok", line)
                if m:
                    responses.add(m.group(1))
                    if len(responses) == self.n:
                        t_nth = time.monotonic() - t0
                        break
        finally:
            guard.cancel()
            kill_child(p, signal.SIGTERM)
            p.stdout.close()
        return t_nth, len(responses), time.monotonic() - t0, None


class Werify:
    name = "werify"

    def __init__(self, n, work, run_no, binary, port, extra=()):
        self.n = n
        self.extra = list(extra)
        # A fresh data dir per run: a node restores its membership snapshot on start, which
        # would skip the join being measured.
        self.work = os.path.join(work, f"werify-run{run_no}")
        os.makedirs(self.work)
        self.bin = binary
        self.port = port
        self.procs = {}
        # Node -> QUIC connections open to peers, as the last `states` poll reported.
        self.open_connections = {}
        # Default settings and log level, like the Serf agents (RUST_LOG unset = info).
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("WERIFY_") and k != "RUST_LOG"}

    def ip(self, k):
        return node_ip(k)

    def addr(self, k):
        return f"{self.ip(k)}:{self.port}"

    def start(self, k, join=None):
        data = os.path.join(self.work, f"werify-n{k}")
        os.makedirs(data, exist_ok=True)
        logf = open(os.path.join(self.work, f"werify-n{k}.log"), "w")
        self.procs[k] = spawn([
            self.bin, "node", "--bind", self.ip(k), "--port", str(self.port),
            "--data-dir", data, "--profile", "lan",
        ] + ([] if join is None else ["--join", self.addr(join)]) + self.extra,
            stdout=logf, env=self.env)
        logf.close()

    def member_key(self, k):
        return self.addr(k)

    def ready_socket(self, k):
        """The socket that is bound once node k can answer a CLI: its QUIC port."""
        return self.ip(k), self.port, "udp"

    def ctl_cmd(self, k, args, timeout=10):
        return [self.bin, "ctl", "--connect", self.addr(k), "--timeout", f"{timeout}s"] + args

    def ready(self, k):
        count, _ = self.alive_count(k)
        return count

    def join_cmd(self, k):
        return [self.bin, "ctl", "--connect", self.addr(k), "--timeout", "30s",
                "add", self.addr(1)]

    def add_cmd(self, k):
        """Node 1 brings node k in (the one-after-another pattern): `werify ctl add`."""
        return [self.bin, "ctl", "--connect", self.addr(1), "--timeout", "30s",
                "add", self.addr(k)]

    def batch_cmd(self, ks):
        """Node 1 brings every node of `ks` in with one command: a batch of `add` lines fed
        to `werify ctl -`. Returns (argv, stdin text)."""
        return ([self.bin, "ctl", "--connect", self.addr(1), "--timeout", "60s", "-"],
                "".join(f"add {self.addr(k)}\n" for k in ks))

    def join_ok(self, rc, out, err):
        # Gossip may have brought node 1 in before this add ran: that is a successful join.
        return rc == 0 or "already in the mesh" in err

    def poll_argv(self, k):
        return self.ctl_cmd(k, ["listactive"])

    def alive_count(self, k):
        """`werify ctl listactive` on node k: the N of "Active hosts (N)", or None."""
        out, dt, _ = poll_cmd(self.poll_argv(k), END_OF_LIST, 15, self.env)
        m = re.search(r"^Active hosts \((\d+)\)", out, re.M)
        if "End of list" not in out or not m:
            return None, dt
        return int(m.group(1)), dt

    def states(self, k):
        out, dt, _ = poll_cmd([self.bin, "mesh", "status", "--connect", self.addr(k),
                               "--output", "json"], lambda line: line == "}\n", 15, self.env)
        try:
            doc = json.loads(out)
            members = doc["members"]
        except (ValueError, KeyError):
            return None, dt
        # QUIC connections the node has open, less the one this CLI holds.
        if isinstance(doc.get("connections"), int):
            self.open_connections[k] = max(doc["connections"] - 1, 0)
        # The JSON carries the wire names of the states (a, s, d, l).
        names = {"a": "alive", "s": "suspect", "d": "dead", "l": "left"}
        return {m["addr"]: names.get(str(m["state"]), str(m["state"]).lower())
                for m in members}, dt

    def peer_connections(self, nodes):
        """QUIC connections per node, as the last `states` sweep reported them."""
        return [self.open_connections[k] for k in nodes if k in self.open_connections]

    def fanout(self, ops_file, coordinator=1):
        """`werify ctl operation FILE --wait` from one node. Returns (seconds until every host
        answered or None, hosts answered, seconds until the CLI exited, coordinator's own
        "took")."""
        t0 = time.monotonic()
        p = spawn(self.ctl_cmd(coordinator, ["operation", ops_file, "--wait", "--deadline", "20s"],
                               40),
                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, text=True,
                  record=False)
        guard = threading.Timer(60, kill_child, [p])
        guard.daemon = True
        guard.start()
        lines = []
        t_report = None
        for line in p.stdout:
            lines.append(line)
            if line.startswith("Hosts: ") and t_report is None:
                t_report = time.monotonic() - t0
        p.wait()
        cli_s = time.monotonic() - t0
        guard.cancel()
        p.stdout.close()
        forget(p)
        out = "".join(lines)
        m = re.search(r"Hosts: (\d+) targeted, (\d+) answered", out)
        answered = int(m.group(2)) if m else 0
        took = re.search(r"Operation ended, took (\S+)", out)
        took_s = go_duration_seconds(took.group(1)) if took else None
        done = answered == self.n and f"checks: {self.n} passed, 0 failed, 0 errored" in out
        return (t_report if done else None), answered, cli_s, took_s


def END_OF_LIST(line):
    return line.startswith("End of list")


def go_duration_seconds(text):
    """Parses a Go duration such as 12.3ms, 406.97µs, 1m2.5s into seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(h|ms|m|s|µs|us|ns)", text):
        total += float(num) * units[unit]
    return total


# ----------------------------------------------------------------------------------------
# Polling: a few worker threads cycle over the nodes that are not done yet, so each node is
# polled again as soon as a worker is free. A node's time is the end of the first poll that
# showed the condition (an upper bound; the poll before it did not show it).


def poll_until(nodes, probe, deadline, workers, t0):
    pending = deque(nodes)
    done = {}
    durations = []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not pending or time.monotonic() > deadline:
                    return
                k = pending.popleft()
            ok, dt = probe(k)
            now = time.monotonic()
            with lock:
                durations.append(dt)
                if ok:
                    done[k] = now - t0
                else:
                    pending.append(k)

    errors = []

    def guarded():
        try:
            worker()
        except Exception as e:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(e)
            with lock:
                pending.clear()

    threads = [threading.Thread(target=guarded) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done, durations


def cli_cost(argv, env, reps=10):
    """Wall seconds and CPU seconds (user+sys) of one poll CLI, run `reps` times in a row;
    returns medians of wall time to exit and the mean CPU per call."""
    time.sleep(1)  # let background reaps of earlier polls finish (their CPU would count)
    walls = []
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(reps):
        t0 = time.monotonic()
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=20)
        walls.append(time.monotonic() - t0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / reps
    return statistics.median(walls), cpu


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ----------------------------------------------------------------------------------------
# Joins one host after another: measured beside the all-at-once join, the same way for both
# systems, and ended after convergence (fan-out, kills and the idle window run after the
# all-at-once join only).

JOIN_PATTERNS = {
    "all": "all at once: every node k > 1 joins node 1 at the same time",
    "add-seq": "one after another through node 1: werify ctl add / serf join on node 1, "
               "each command after the previous one ended",
    "batch": "one command on node 1 naming every host: werify ctl - with N-1 add lines / "
             "one serf join naming N-1 agents",
    "join-seq": "started one after another with a join flag to node 1 (werify node --join / "
                "serf agent -join), each once the previous one answers",
}


def listening(ip, port, proto):
    """Whether a socket is bound to ip:port (`proto` "udp" or "tcp", from /proc/net)."""
    want = "".join(f"{int(b):02X}" for b in reversed(ip.split("."))) + f":{port:04X}"
    try:
        with open(f"/proc/net/{proto}") as f:
            return any(line.split()[1] == want for line in f.readlines()[1:])
    except OSError:
        return False


def wait_ready(sysm, ks, args):
    """Polls until every node of `ks` answers, or raises. A CLI poll goes out only once the
    node's socket is bound (werify's QUIC port, Serf's RPC port), as a poll of a port
    nothing is bound to costs the two CLIs very different times to fail (QUIC waits for
    its dial timeout, TCP is refused at once)."""
    t0 = time.monotonic()
    for k in ks:
        ip, port, proto = sysm.ready_socket(k)
        while not listening(ip, port, proto) and time.monotonic() < t0 + 90:
            if sysm.procs[k].poll() is not None:
                break
            time.sleep(0.005)

    def answers(k):
        if sysm.procs[k].poll() is not None:
            raise RuntimeError(f"{sysm.name} agent n{k} exited at start (code "
                               f"{sysm.procs[k].returncode}); see its log in {sysm.work}")
        return sysm.ready(k) is not None, 0.0

    ready, _ = poll_until(list(ks), answers, t0 + 90, args.workers, t0)
    if len(ready) < len(ks):
        raise RuntimeError(f"{sysm.name}: only {len(ready)}/{len(ks)} agents answered within "
                           f"90 s; see the logs in {sysm.work}")


def run_cmd(argv, env, stdin_text=None, timeout=120):
    """Runs one join command to its end; returns (exit code, stdout, stderr)."""
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
              record=False,
              stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE)
    try:
        out, err = p.communicate(input=stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_child(p)
        out, err = "", "timed out"
    forget(p)
    return p.returncode, out, err


def one_by_one_run(sysm, args, run_no, pattern):
    """Brings N nodes together one host after another (`pattern`, see JOIN_PATTERNS) and
    measures the time from the first command or launch until every node lists N alive."""
    n = args.n
    res = {"system": sysm.name, "run": run_no, "pattern": pattern}
    nodes = list(range(1, n + 1))
    env = getattr(sysm, "env", None)
    log(f"{sysm.name} run {run_no}: join pattern {pattern}")
    fail = 0
    if pattern == "join-seq":
        sysm.start(1)
        wait_ready(sysm, [1], args)
        t_first = time.monotonic()
        for k in nodes[1:]:
            sysm.start(k, join=1)
            wait_ready(sysm, [k], args)
    else:
        for k in nodes:
            sysm.start(k)
        wait_ready(sysm, nodes, args)
        t_first = time.monotonic()
        if pattern == "add-seq":
            for k in nodes[1:]:
                rc, out, err = run_cmd(sysm.add_cmd(k), env)
                if not sysm.join_ok(rc, out, err):
                    fail += 1
                    log(f"  adding node {k} failed: {err.strip()[:200]}")
        elif pattern == "batch":
            argv, stdin_text = sysm.batch_cmd(nodes[1:])
            rc, out, err = run_cmd(argv, env, stdin_text)
            if rc != 0:
                fail += 1
                log(f"  the batch failed: {err.strip()[:300]}")
        else:
            raise ValueError(f"unknown join pattern {pattern!r}")
    res["join_cmds_s"] = time.monotonic() - t_first
    res["join_failed"] = fail

    def converged(k):
        count, dt = sysm.alive_count(k)
        return count == n, dt

    conv, durs = poll_until(nodes, converged, t_first + args.converge_timeout, args.workers,
                            t_first)
    res["converged_nodes"] = len(conv)
    res["convergence_s"] = max(conv.values()) if len(conv) == n else None
    res["poll_cost_s"] = median(durs)
    slowest = sorted(conv.items(), key=lambda kv: -kv[1])[:3]
    log(f"{sysm.name} run {run_no}: {pattern}: commands took {fmt_s(res['join_cmds_s'])}, "
        f"converged {len(conv)}/{n} in {fmt_s(res['convergence_s'])} (slowest "
        + ", ".join(f"n{k} {fmt_s(t)}" for k, t in slowest) + ")")
    for k in nodes:
        if k in sysm.procs:
            kill_child(sysm.procs[k])
    return res


# ----------------------------------------------------------------------------------------
# One run of one system.


def one_run(sysm, args, run_no, ops_file):
    n = args.n
    res = {"system": sysm.name, "run": run_no}
    nodes = list(range(1, n + 1))
    log(f"{sysm.name} run {run_no}: starting {n} agents")
    for k in nodes:
        sysm.start(k)
    deadline = time.monotonic() + 90
    t0 = time.monotonic()
    counts = {}

    def answers(k):
        if sysm.procs[k].poll() is not None:
            raise RuntimeError(f"{sysm.name} agent n{k} exited at start (code "
                               f"{sysm.procs[k].returncode}); see its log in {sysm.work}")
        counts[k] = sysm.ready(k)
        return counts[k] is not None, 0.0

    ready, _ = poll_until(nodes, answers, deadline, args.workers, t0)
    if len(ready) < n:
        dead = [k for k in nodes if sysm.procs[k].poll() is not None]
        raise RuntimeError(f"{sysm.name}: only {len(ready)}/{n} agents answered within 90 s "
                           f"(exited: {dead}); see the logs in {sysm.work}")
    stale = [k for k in nodes if counts[k] != 1]
    if stale:
        raise RuntimeError(f"{sysm.name}: nodes {stale} already list other members before the "
                           "join; stale state would spoil the measurement")
    res["startup_s"] = max(ready.values())

    # Join: every node k > 1 joins node 1, all at once.
    log(f"{sysm.name} run {run_no}: joining")
    pids = {k: sysm.procs[k].pid for k in nodes}
    cpu_join = {0: sum(cpu_ticks(p) or 0 for p in pids.values())}

    def sample_join_cpu():
        cpu_join[1] = sum(cpu_ticks(p) or 0 for p in pids.values())

    # CPU of all nodes in the first JOIN_CPU_WINDOW seconds after the joins (polling included,
    # the same for both systems): what joining costs.
    sampler = threading.Timer(JOIN_CPU_WINDOW, sample_join_cpu)
    sampler.daemon = True
    t_join = time.monotonic()
    sampler.start()
    joins = [(k, spawn(sysm.join_cmd(k), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=getattr(sysm, "env", None), text=True, record=False))
             for k in nodes[1:]]
    join_fail = 0
    for k, p in joins:
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            kill_child(p)
            out, err = "", "timed out"
        with _children_lock:
            _children.pop(p.pid, None)
        if not sysm.join_ok(p.returncode, out, err):
            join_fail += 1
            log(f"  join of node {k} failed: {err.strip()[:200]}")
    res["join_cmds_s"] = time.monotonic() - t_join
    res["join_failed"] = join_fail

    def converged(k):
        count, dt = sysm.alive_count(k)
        return count == n, dt

    conv, durs = poll_until(nodes, converged, t_join + args.converge_timeout, args.workers,
                            t_join)
    res["converged_nodes"] = len(conv)
    res["convergence_s"] = max(conv.values()) if len(conv) == n else None
    res["convergence_node_median_s"] = median(conv.values())
    res["poll_cost_s"] = median(durs)
    slowest = sorted(conv.items(), key=lambda kv: -kv[1])[:3]
    log(f"{sysm.name} run {run_no}: converged {len(conv)}/{n} in "
        f"{fmt_s(res['convergence_s'])} (poll cost {fmt_s(res['poll_cost_s'])}; slowest "
        + ", ".join(f"n{k} {fmt_s(t)}" for k, t in slowest)
        + (f"; not converged: {sorted(set(nodes) - set(conv))}" if len(conv) < n else "") + ")")

    # Idle window: no CLI calls at all, only the counters.
    time.sleep(max(args.settle, JOIN_CPU_WINDOW + 0.5 - (time.monotonic() - t_join)))
    sampler.join()
    res["join_cpu_s"] = (cpu_join[1] - cpu_join[0]) / CLK_TCK if 1 in cpu_join else None
    with ByteCounters(f"{args.table}_{sysm.name}", n, sysm.port) as bc:
        c0 = {k: cpu_ticks(p) for k, p in pids.items()}
        b0 = bc.read()
        w0 = time.monotonic()
        time.sleep(args.idle)
        w1 = time.monotonic()
        b1 = bc.read()
        c1 = {k: cpu_ticks(p) for k, p in pids.items()}
    window = w1 - w0
    rss = [rss_kb(p) for p in pids.values()]
    res["rss_anon_kb_median"] = median([rss_kb(p, "RssAnon") for p in pids.values()])
    res["pss_kb_median"] = median([pss_kb(p) for p in pids.values()])
    res["idle_window_s"] = window
    res["idle_cpu_s_total"] = sum(c1[k] - c0[k] for k in nodes) / CLK_TCK
    sent = {k: b1.get(k, (0, 0))[1] - b0.get(k, (0, 0))[1] for k in nodes}
    pkts = {k: b1.get(k, (0, 0))[0] - b0.get(k, (0, 0))[0] for k in nodes}
    res["idle_bytes_per_node_s"] = sum(sent.values()) / n / window
    res["idle_bytes_per_node_s_max"] = max(sent.values()) / window
    res["idle_packets_per_node_s"] = sum(pkts.values()) / n / window
    res["rss_kb_median"] = median(rss)
    res["rss_kb_max"] = max(r for r in rss if r is not None)
    log(f"{sysm.name} run {run_no}: idle {window:.0f}s cpu {res['idle_cpu_s_total']:.2f}s "
        f"{res['idle_bytes_per_node_s']:.0f} B/node/s rss {res['rss_kb_median'] / 1024:.1f} MB")

    # Everyone should still see everyone alive after the idle window.
    false_dead = set()
    false_suspect = set()
    victims = set()

    def note_false(k, states):
        for key, st in states.items():
            if key in victims:
                continue
            if st == "dead":
                false_dead.add((k, key))
            elif st == "suspect":
                false_suspect.add((k, key))

    for k in nodes:
        states, _ = sysm.states(k)
        if states is not None:
            note_false(k, states)
    conns = sysm.peer_connections(nodes)
    res["open_connections_median"] = median(conns)
    res["open_connections_max"] = max(conns, default=None)

    res["poll_exit_s"], res["poll_cpu_s"] = cli_cost(sysm.poll_argv(1), getattr(sysm, "env", None))

    # Fan-out.
    fan = []
    for q in range(args.queries):
        t_nth, answered, cli_s, took = sysm.fanout(ops_file)
        fan.append({"t_nth_s": t_nth, "answered": answered, "cli_s": cli_s, "took_s": took,
                    "dispatched_s": getattr(sysm, "last_dispatch_s", None)})
        time.sleep(1)
    res["fanout"] = fan
    log(f"{sysm.name} run {run_no}: fan-out to N-th answer "
        + ", ".join(f"{fmt_s(f['t_nth_s'])} ({f['answered']}/{n})" for f in fan))

    # Failure detection: kill -9 the last nodes one after another.
    live = list(nodes)
    kills = []
    for i in range(args.kills):
        victim = n - i
        if victim <= 2:
            break
        vkey = sysm.member_key(victim)
        victims.add(vkey)
        observers = [k for k in live if k != victim]
        time.sleep(2)
        t_kill = time.monotonic()
        kill_child(sysm.procs[victim])
        live.remove(victim)
        first_suspect = {}

        def sees_dead(k, vkey=vkey, first_suspect=first_suspect, t_kill=t_kill):
            states, dt = sysm.states(k)
            if states is None:
                return False, dt
            note_false(k, states)
            st = states.get(vkey)
            if st in ("suspect", "dead") and k not in first_suspect:
                first_suspect[k] = time.monotonic() - t_kill
            return st == "dead", dt

        det, durs = poll_until(observers, sees_dead, t_kill + args.detect_timeout,
                               args.workers, t_kill)
        kills.append({
            "victim": victim,
            "observers": len(observers),
            "saw_dead": len(det),
            "all_dead_s": max(det.values()) if len(det) == len(observers) else None,
            "observer_median_dead_s": median(det.values()),
            "all_inactive_s": (max(first_suspect.values())
                               if len(first_suspect) == len(observers) else None),
            "poll_cost_s": median(durs),
        })
        log(f"{sysm.name} run {run_no}: kill -9 n{victim}: {len(det)}/{len(observers)} saw it "
            f"dead, all by {fmt_s(kills[-1]['all_dead_s'])}")
    res["kills"] = kills
    res["false_dead_pairs"] = len(false_dead)
    res["false_suspect_pairs"] = len(false_suspect)
    res["rss_kb_median_after"] = median([rss_kb(sysm.procs[k].pid) for k in live])

    for k in nodes:
        if k in sysm.procs:
            kill_child(sysm.procs[k])
    return res


def fmt_s(x):
    return "-" if x is None else (f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s")


# ----------------------------------------------------------------------------------------
# werify's profile numbers, read from src/mesh/config.rs so the report shows what ran.


def werify_profile(root, profile, n):
    text = open(os.path.join(root, "src/mesh/config.rs")).read()
    m = re.search(r"Profile::" + profile + r" => Config \{(.*?)\n\s*\},", text, re.S)
    if not m:
        return {}
    vals = {}
    for field, expr in re.findall(r"(\w+): ([^,\n]+),", m.group(1)):
        e = expr.strip().replace("_", "")
        mm = re.fullmatch(r"(ms|secs)\((\d+)\)", e)
        if mm:
            vals[field] = int(mm.group(2)) / (1000 if mm.group(1) == "ms" else 1)
        elif e.isdigit():
            vals[field] = int(e)
        elif re.fullmatch(r"\d+\.\d+", e):
            vals[field] = float(e)
    derived = {}
    if "probe_interval" in vals:
        # The unit is one probe's span: 2 × timeout, at most the interval (Config::probe_span).
        span = min(vals["probe_interval"], 2 * vals["probe_timeout"])
        smin = vals["suspicion_mult"] * max(1.0, math.log10(n)) * span
        derived = {
            "suspicion_min_s": round(smin, 3),
            "suspicion_max_s": round(smin * vals["suspicion_max_mult"], 3),
            "retransmit_limit": vals["retransmit_mult"] * max(1, math.ceil(math.log10(n + 1))),
            "push_pull_interval_s": (vals["push_pull_interval"] if n <= 32 else
                                     vals["push_pull_interval"]
                                     * (math.ceil(math.log2(n) - 5) + 1)),
        }
    return {"settings": vals, "derived_at_n": derived}


# memberlist DefaultLANConfig (config.go), which `serf agent -profile lan` uses.
SERF_LAN = {"probe_interval": 1.0, "probe_timeout": 0.5, "indirect_checks": 3,
            "retransmit_mult": 4, "suspicion_mult": 4, "suspicion_max_mult": 6,
            "gossip_interval": 0.2, "gossip_fanout": 3, "push_pull_interval": 30}


def serf_derived(n):
    smin = 4 * max(1.0, math.log10(n)) * 1.0
    return {"suspicion_min_s": round(smin, 3), "suspicion_max_s": round(smin * 6, 3),
            "query_timeout_s": round(0.2 * 16 * max(1, math.ceil(math.log10(n + 1))), 3)}


# ----------------------------------------------------------------------------------------
# Report.


def summarize(results, n):
    out = {}
    for name in ("serf", "werify"):
        rs = [r for r in results if r["system"] == name and r.get("pattern", "all") == "all"]
        patterns = {}
        for pattern in JOIN_PATTERNS:
            if pattern == "all":
                continue
            ps = [r for r in results if r["system"] == name and r.get("pattern") == pattern]
            if ps:
                patterns[pattern] = {
                    "convergence_s": median([r["convergence_s"] for r in ps]),
                    "samples_s": [r["convergence_s"] for r in ps],
                    "join_cmds_s": median([r["join_cmds_s"] for r in ps]),
                    "complete": f"{sum(r['converged_nodes'] for r in ps)}/{n * len(ps)}",
                    "failed_cmds": sum(r["join_failed"] for r in ps),
                }
        fans = [f for r in rs for f in r["fanout"]]
        kills = [k for r in rs for k in r["kills"]]
        out[name] = {
            "runs": len(rs),
            "convergence_s": median([r["convergence_s"] for r in rs]),
            "convergence_complete": f"{sum(r['converged_nodes'] for r in rs)}/{n * len(rs)}",
            "poll_cost_s": median([r["poll_cost_s"] for r in rs]),
            "poll_exit_s": median([r["poll_exit_s"] for r in rs]),
            "poll_cpu_s": median([r["poll_cpu_s"] for r in rs]),
            "fanout_s": median([f["t_nth_s"] for f in fans]),
            "fanout_complete": f"{sum(1 for f in fans if f['t_nth_s'] is not None)}/{len(fans)}"
                               f" (min {min((f['answered'] for f in fans), default=0)}/{n})",
            "fanout_cli_s": median([f["cli_s"] for f in fans]),
            "fanout_took_s": median([f["took_s"] for f in fans]),
            "detect_s": median([k["all_dead_s"] for k in kills]),
            "detect_max_s": max((k["all_dead_s"] for k in kills if k["all_dead_s"] is not None),
                                default=None),
            "detect_observer_median_s": median([k["observer_median_dead_s"] for k in kills]),
            "detect_inactive_s": median([k["all_inactive_s"] for k in kills]),
            "detect_complete": f"{sum(k['saw_dead'] for k in kills)}/"
                               f"{sum(k['observers'] for k in kills)}",
            "false_dead_pairs": sum(r["false_dead_pairs"] for r in rs),
            "false_suspect_pairs": sum(r["false_suspect_pairs"] for r in rs),
            "rss_mb": (median([r["rss_kb_median"] for r in rs]) or 0) / 1024,
            "rss_anon_mb": (median([r["rss_anon_kb_median"] for r in rs]) or 0) / 1024,
            "pss_mb": (median([r["pss_kb_median"] for r in rs]) or 0) / 1024,
            "rss_mb_max": max((r["rss_kb_max"] for r in rs), default=0) / 1024,
            "rss_mb_after": (median([r["rss_kb_median_after"] for r in rs]) or 0) / 1024,
            "idle_cpu_s": median([r["idle_cpu_s_total"] for r in rs]),
            "join_cpu_s": median([r.get("join_cpu_s") for r in rs]),
            "idle_bytes": median([r["idle_bytes_per_node_s"] for r in rs]),
            "idle_packets": median([r["idle_packets_per_node_s"] for r in rs]),
            "open_connections": median([r.get("open_connections_median") for r in rs]),
            "open_connections_max": max((r["open_connections_max"] for r in rs
                                         if r.get("open_connections_max") is not None),
                                        default=None),
            "patterns": patterns,
        }
    return out


def ratio(w, s):
    if w is None or s is None or s == 0:
        return "-"
    return f"{w / s:.3f}"


def print_table(summary, args, wprof):
    s, w = summary["serf"], summary["werify"]
    n = args.n
    rows = [
        ("join convergence (all N list N alive)", "convergence_s", fmt_s,
         f"serf {s['convergence_complete']}, werify {w['convergence_complete']} nodes"),
        ("  one poll: until its report is complete", "poll_cost_s", fmt_s,
         "serf members / werify ctl listactive"),
        ("  one poll: until the CLI exits", "poll_exit_s", fmt_s, "werify ctl drains QUIC"),
        ("  one poll: CPU of the CLI (ms)", "poll_cpu_s", lambda x: f"{x * 1000:.1f}", ""),
        ("fan-out: time to N-th answer", "fanout_s", fmt_s,
         f"serf {s['fanout_complete']}, werify {w['fanout_complete']} complete"),
        ("  CLI until exit", "fanout_cli_s", fmt_s, "serf: stopped at N-th answer"),
        ("failure detection: all list it dead", "detect_s", fmt_s,
         f"serf {s['detect_complete']}, werify {w['detect_complete']} observers"),
        ("  worst kill", "detect_max_s", fmt_s, ""),
        ("  median observer", "detect_observer_median_s", fmt_s, ""),
        ("  werify: all list it inactive", "detect_inactive_s", fmt_s,
         "werify suspect-or-dead"),
        ("RSS per node after idle (MB, median)", "rss_mb", lambda x: f"{x:.1f}", ""),
        ("  of which anonymous (RssAnon, MB)", "rss_anon_mb", lambda x: f"{x:.1f}",
         "the rest is mapped files (binary, libs)"),
        ("  PSS per node (MB, median)", "pss_mb", lambda x: f"{x:.1f}",
         "shared binary pages split among the N nodes"),
        ("  RSS max node (MB)", "rss_mb_max", lambda x: f"{x:.1f}", ""),
        ("  RSS after fan-out+kills (MB)", "rss_mb_after", lambda x: f"{x:.1f}", ""),
        (f"join CPU s, all nodes, first {JOIN_CPU_WINDOW:.0f} s", "join_cpu_s",
         lambda x: f"{x:.2f}", "includes answering the convergence polls"),
        (f"idle CPU s, all nodes, {args.idle:.0f} s", "idle_cpu_s", lambda x: f"{x:.2f}", ""),
        ("idle bytes sent / node / s", "idle_bytes", lambda x: f"{x:.0f}", ""),
        ("idle packets sent / node / s", "idle_packets", lambda x: f"{x:.1f}", ""),
        ("open connections per node after idle (median)", "open_connections",
         lambda x: f"{x:.0f}",
         f"max serf {s.get('open_connections_max')}, werify {w.get('open_connections_max')}; "
         "Serf: TCP on its gossip port; werify: QUIC, the CLI's own not counted"),
    ]
    print(f"\n## N = {n}: medians over {s['runs']} Serf and {w['runs']} werify runs "
          f"(alternated), {args.queries} queries and {args.kills} kills per run\n")
    print("| metric | Serf | werify | werify/Serf | completeness |")
    print("| --- | ---: | ---: | ---: | --- |")
    labels = {
        "add-seq": "join convergence, one after another (ctl add / serf join on node 1)",
        "batch": "join convergence, one batch (ctl - / one serf join naming all)",
        "join-seq": "join convergence, started one after another with --join / -join",
    }
    for i, (label, key, f, note) in enumerate(rows):
        sv, wv = s.get(key), w.get(key)
        print(f"| {label} | {'-' if sv is None else f(sv)} | {'-' if wv is None else f(wv)} | "
              f"{ratio(wv, sv)} | {note} |")
        if i != 0:
            continue
        for pattern, plabel in labels.items():
            sp, wp = s["patterns"].get(pattern), w["patterns"].get(pattern)
            if sp is None and wp is None:
                continue
            sv = sp and sp["convergence_s"]
            wv = wp and wp["convergence_s"]
            cmds = ", ".join(f"{sys} commands {fmt_s(p['join_cmds_s'])}, "
                             f"{p['complete']} nodes, {p['failed_cmds']} failed"
                             for sys, p in (("serf", sp), ("werify", wp)) if p)
            print(f"| {plabel} | {fmt_s(sv)} | {fmt_s(wv)} | {ratio(wv, sv)} | {cmds} |")
    print(f"| false dead (observer, member) pairs | {s['false_dead_pairs']} | "
          f"{w['false_dead_pairs']} | | werify false suspect pairs: {w['false_suspect_pairs']} |")
    st = wprof.get("settings", {})
    d = wprof.get("derived_at_n", {})
    print(f"\nwerify profile lan (src/mesh/config.rs): probe {st.get('probe_interval')} s / "
          f"timeout {st.get('probe_timeout')} s, indirect {st.get('indirect_checks')}, "
          f"suspicion mult {st.get('suspicion_mult')} (min {d.get('suspicion_min_s')} s, max "
          f"{d.get('suspicion_max_s')} s at N={n}), confirmations "
          f"{st.get('suspicion_confirmations')}, gossip {st.get('gossip_interval')} s to "
          f"{st.get('gossip_fanout')} ({st.get('fresh_gossip_interval')} s while news is unsent), retransmit limit {d.get('retransmit_limit')}, push-pull "
          f"{d.get('push_pull_interval_s')} s, rejoin {st.get('rejoin_interval')} s")
    sd = serf_derived(n)
    print(f"Serf -profile lan (memberlist DefaultLANConfig): probe 1 s / timeout 0.5 s, "
          f"indirect 3, suspicion mult 4 (min {sd['suspicion_min_s']} s, max "
          f"{sd['suspicion_max_s']} s at N={n}), gossip 0.2 s to 3, push-pull 30 s (scaled "
          f"above 32), default query timeout {sd['query_timeout_s']} s")


def main():
    global _pidfile
    ap = argparse.ArgumentParser(
        description="werify vs Serf side by side on 127.0.0.1..N (run via bench/compare-serf.sh)")
    ap.add_argument("n", type=int)
    ap.add_argument("--werify", required=True, help="path of the werify binary")
    ap.add_argument("--root", required=True, help="werify source tree (for config.rs)")
    ap.add_argument("--work", required=True, help="scratch dir (logs, data dirs)")
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--table", required=True, help="nftables table name prefix")
    ap.add_argument("--json-out", required=True)
    ap.add_argument("--port", type=int, default=30035)
    ap.add_argument("--net", default="127.0.0",
                    help="the loopback /24 the nodes start in, as three bytes (node k is NET.k up to 250, then the next /24s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--settle", type=float, default=10)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--systems", default="serf,werify",
                    help="which systems to run, in this order, each round (for diagnosis)")
    ap.add_argument("--werify-arg", action="append", default=[],
                    help="extra werify node argument (repeatable; for diagnosis, e.g. "
                         "--werify-arg=--check-interval=1h)")
    ap.add_argument("--join-patterns", default="all,add-seq,batch,join-seq",
                    help="how the nodes are brought together, each measured per round and "
                         "system: " + "; ".join(f"{k}: {v}" for k, v in JOIN_PATTERNS.items())
                         + ". Fan-out, kills and the idle window follow the 'all' join only")
    ap.add_argument("--converge-timeout", type=float, default=120)
    ap.add_argument("--detect-timeout", type=float, default=120)
    args = ap.parse_args()
    if not 2 <= args.n <= 1000:
        sys.exit("N must be between 2 and 1000 (one address per node)")
    global NET
    if not re.fullmatch(r"127\.\d{1,3}\.\d{1,3}", args.net):
        sys.exit(f"--net {args.net!r}: give three bytes of a loopback address, e.g. 127.0.1")
    NET = args.net
    _pidfile = args.pidfile

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ops_file = os.path.join(args.work, "ops.json")
    with open(ops_file, "w") as f:
        json.dump({"check": {"type": "file_exists", "path": "/etc/hosts"}}, f)

    patterns = [p.strip() for p in args.join_patterns.split(",") if p.strip()]
    for p in patterns:
        if p not in JOIN_PATTERNS:
            sys.exit(f"--join-patterns: unknown pattern {p!r}; the patterns are "
                     + ", ".join(JOIN_PATTERNS))
    results = []
    started = datetime.datetime.now().astimezone()
    try:
        for rnd in range(1, args.rounds + 1):
            for pattern in patterns:
                for name in args.systems.split(","):
                    work = f"{rnd}-{pattern}"
                    if name == "serf":
                        sysm = Serf(args.n, args.work, work)
                    elif name == "werify":
                        sysm = Werify(args.n, args.work, work, args.werify, args.port,
                                      args.werify_arg)
                    else:
                        sys.exit(f"--systems: unknown system {name!r}; use serf and/or werify")
                    if pattern == "all":
                        results.append(one_run(sysm, args, rnd, ops_file))
                    else:
                        results.append(one_by_one_run(sysm, args, rnd, pattern))
    finally:
        stop_all()
    summary = summarize(results, args.n)
    wprof = werify_profile(args.root, "Lan", args.n)
    print_table(summary, args, wprof)
    with open(args.json_out, "w") as f:
        json.dump({"n": args.n, "started": started.isoformat(timespec="seconds"),
                   "args": {k: v for k, v in vars(args).items()
                            if k not in ("pidfile", "work", "table")},
                   "werify_profile": wprof, "serf_profile": {**SERF_LAN, **serf_derived(args.n)},
                   "summary": summary, "runs": results}, f, indent=1)
    print(f"\nraw samples: {args.json_out}")


if __name__ == "__main__":
    main()
