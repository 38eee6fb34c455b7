#!/usr/bin/env python3
"""Load benchmark driver: see run.sh. Starts an nginx origin and, on loopback,
rempart with the shipped configuration (as the CDN-front deployment: the load
generator is the trusted CDN), a bare pingora proxy, a plain nginx proxy,
nginx with the ai.robots.txt block and HAProxy with its token list; gives each
the same pre-built requests from a crowd of client addresses (crowd.py),
interleaved; checks that every setup answered every request as intended;
measures rps, latency, the proxy's CPU per request from /proc and peak RSS,
in two runs (one thread on a core of its own; two threads on both cores);
writes a Markdown report with every ratio taken from this one run."""

import argparse
import difflib
import platform
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, HERE)
import crowd  # noqa: E402
import report  # noqa: E402

ORIGIN_PORT = 18080
PORTS = {"rempart": 18081, "nginx-map": 18082, "haproxy": 18083, "baseline": 18084, "bare": 18085,
         "nginx-plain": 18086, "bare-refuse": 18087}
ADMIN_PORTS = {"rempart": 18091, "baseline": 18094}
# The workloads (crowd.py builds their requests; report.py describes them).
WORKLOADS = ["page", "file", "gptbot", "claudebot"]

# What each setup must answer: (status, rempart's action in rempart_requests_total).
# The shipped policy offers a licence to every AI-training crawler
# (rule ai-licensing-offer), GPTBot included; the nginx and HAProxy snippets
# refuse; the bare proxies forward everything.
EXPECT = {
    "page": {"*": (200, "allow")},
    "file": {"*": (200, "allow")},
    "gptbot": {"rempart": (402, "offer"), "baseline": (402, "offer"), "nginx-map": (403, None),
               "haproxy": (403, None), "bare-refuse": (403, None), "*": (200, None)},
    "claudebot": {"rempart": (402, "offer"), "baseline": (402, "offer"), "nginx-map": (403, None),
                  "haproxy": (403, None), "bare-refuse": (403, None), "*": (200, None)},
}


def expected(workload, setup):
    table = EXPECT[workload]
    return table.get(setup, table["*"])

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def wait_port(port, timeout=15):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except OSError:
        return []


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


def status_kb(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def reset_peak(pids):
    """Resets the processes' peak RSS (VmHWM), so that it is this workload's."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n if unit == "ms" else n * 1000


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "rps": rps,
        "requests": total,
        "p50": to_ms(lat.get("50", "nan")),
        "p99": to_ms(lat.get("99", "nan")),
        "socket_errors": errors.group(1).strip() if errors else "",
    }



def bench_config(shipped, port, admin, threads):
    """The shipped configuration with only what a benchmark must change:
    its ports, its threads, the load generator as the trusted CDN, the bench
    origin, and no range refresh or file watching (nothing to fetch, nothing
    to reload). State paths are relative: they land in the temp directory
    the copy is written to."""
    edits = {
        ("server", "listen"): f'"127.0.0.1:{port}"',
        ("server", "upstream"): f'"http://127.0.0.1:{ORIGIN_PORT}"',
        ("server", "threads"): str(threads),
        ("server", "trusted_proxies"): '["127.0.0.1/32"]',
        ("admin", "listen"): f'"127.0.0.1:{admin}"',
        ("reload", "watch"): "false",
        ("ranges", "refresh"): "false",
    }
    done, section, out = set(), None, []
    for line in shipped.splitlines(keepends=True):
        m = re.match(r"^\s*\[\[?([^\]]+)\]\]?\s*(#.*)?$", line)
        if m:
            section = m.group(1).strip()
        m = re.match(r"^(\w+)\s*=", line)
        if m and (section, m.group(1)) in edits:
            key = (section, m.group(1))
            line = f"{key[1]} = {edits[key]}\n"
            done.add(key)
        out.append(line)
    missing = set(edits) - done
    if missing:
        raise RuntimeError(f"the shipped config lacks {sorted(missing)}: the benchmark cannot set them")
    return "".join(out)


def scrape(admin):
    """From rempart's /metrics: requests by action, requests by behaviour
    signal, evidence records written and dropped."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    out = {"actions": {}, "signals": {}}
    for kind, metric, label in (("actions", "rempart_requests_total", "action"),
                                ("signals", "rempart_behaviour_signals_total", "signal")):
        for key, value in re.findall(rf'^{metric}\{{[^}}]*{label}="([^"]+)"[^}}]*\}}\s+(\S+)$', text, re.M):
            out[kind][key] = out[kind].get(key, 0) + int(float(value))
    for key in ("rempart_evidence_records_total", "rempart_evidence_dropped_total"):
        m = re.search(rf"^{key}\s+(\S+)$", text, re.M)
        out[key] = int(float(m.group(1))) if m else 0
    return out


def delta(after, before):
    """What a measurement added to the counters of `scrape`."""
    out = {}
    for k, v in after.items():
        if isinstance(v, dict):
            out[k] = {a: n - before[k].get(a, 0) for a, n in v.items()}
        else:
            out[k] = v - before.get(k, 0)
    return out


def ask(port, raw):
    """Sends one pre-built request, returns (status, headers, body)."""
    import http.client
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


class Bench:
    """One run: the origin and every setup started once, measured in rounds.
    `threads` per proxy; pinned: proxies on core 1, origin and wrk on core 0;
    unpinned: everything shares both cores."""

    def __init__(self, args, threads=1, pinned=True):
        self.args = args
        self.threads = threads
        self.pinned = pinned
        self.tmp = tempfile.mkdtemp(prefix="rempart-bench-")
        os.chmod(self.tmp, 0o755)
        self.procs = {}
        self.pids = {}
        self.sizes = {}
        self.diff = ""
        self.idle_rss_kb = 0

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def core(self, role):
        """The core of a role ("proxy", "load") in a pinned run; None when unpinned."""
        if not self.pinned:
            return None
        return 1 if role == "proxy" else 0

    def start(self, name, cmd, core, port):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        pin = ["taskset", "-c", str(core)] if core is not None else []
        proc = subprocess.Popen(pin + cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        try:
            wait_port(port, timeout=60)
        except RuntimeError:
            log.flush()
            with open(log.name) as f:
                sys.stderr.write(f"--- {name} log ---\n{f.read()[-4000:]}\n")
            raise
        time.sleep(0.3)
        self.pids[name] = [proc.pid] + children(proc.pid)

    def nginx_common(self, name, workers):
        return (f"user root; worker_processes {workers}; daemon off; error_log {self.tmp}/{name}-error.log warn; "
                f"pid {self.tmp}/{name}.pid;\nevents {{ worker_connections 4096; }}\n")

    def setup_origin(self):
        """The origin: nginx serving a 12 KB page, its three assets and a 1 MiB
        file, marking what it serves with `X-Bench-Origin`."""
        www = os.path.join(self.tmp, "www")
        os.makedirs(www)
        para = "<p>Hiver 1943. Marthe, passeuse dans la vallée de la Clarée, accepte de conduire un enfant seul jusqu'en Italie.</p>\n"
        page = "<!doctype html><html lang=fr><head><meta charset=utf-8><title>La Traversée</title>" \
               "<link rel=stylesheet href=/style.css><script src=/app.js defer></script></head><body>\n" \
               "<img src=/logo.png alt=''>\n"
        while len(page.encode()) < 12 * 1024 - 20:
            page += para
        files = {
            "page.html": page.encode()[: 12 * 1024 - 15] + b"</body></html>\n",
            "style.css": (b"body{margin:0 auto;max-width:40em;font:1.1em/1.5 serif}\n" * 200)[: 8 * 1024],
            "app.js": (b"document.querySelectorAll('p').forEach(function(p){p.dataset.read='1'});\n" * 300)[: 16 * 1024],
            "logo.png": b"\x89PNG\r\n\x1a\n" + os.urandom(4 * 1024 - 8),
            "file.bin": os.urandom(1024 * 1024),
        }
        for name, data in files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
            self.sizes["/" + name] = len(data)
        workers = 1 if self.pinned else 2
        origin = self.write("origin.conf", self.nginx_common("origin", workers) + f"""
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000; types {{ text/html html; text/css css; application/javascript js; image/png png; }}
  server {{ listen 127.0.0.1:{ORIGIN_PORT} reuseport backlog=4096; root {www}; add_header X-Bench-Origin 1; }} }}
""")
        self.start("origin", ["nginx", "-c", origin], self.core("load"), ORIGIN_PORT)
        return www

    def rempart_config(self, name, root):
        """A copy of `root`'s shipped config/rempart.toml in a directory of its
        own, beside links to the shipped data (catalogue, ranges, templates)."""
        cfg_dir = os.path.join(root, "config")
        own = os.path.join(self.tmp, name)
        os.makedirs(own)
        for entry in os.listdir(cfg_dir):
            # The checkout's own state (ledger, keys) stays out: the run's state is its own.
            if entry not in ("rempart.toml", "state"):
                os.symlink(os.path.join(cfg_dir, entry), os.path.join(own, entry))
        shipped = open(os.path.join(cfg_dir, "rempart.toml")).read()
        text = bench_config(shipped, PORTS[name], ADMIN_PORTS[name], self.threads)
        path = os.path.join(own, "rempart.toml")
        with open(path, "w") as f:
            f.write(text)
        diff = "".join(difflib.unified_diff(shipped.splitlines(keepends=True), text.splitlines(keepends=True),
                                            "config/rempart.toml", "benchmark copy", n=0))
        return path, diff

    def setup(self):
        n = self.threads
        self.setup_origin()
        proxy = self.core("proxy")
        cfg, self.diff = self.rempart_config("rempart", ROOT)
        self.start("rempart", [self.args.rempart, "run", "--config", cfg], proxy, PORTS["rempart"])
        self.idle_rss_kb = status_kb(self.pids["rempart"], "VmRSS")
        if getattr(self.args, "baseline", None):
            # Another rempart build, its own checkout's shipped config, same changes, other ports.
            cfg, _ = self.rempart_config("baseline", self.args.baseline_root or ROOT)
            self.start("baseline", [self.args.baseline, "run", "--config", cfg], proxy, PORTS["baseline"])
        self.start("bare", [self.args.bare, f"127.0.0.1:{PORTS['bare']}", f"127.0.0.1:{ORIGIN_PORT}", str(n)],
                   proxy, PORTS["bare"])
        self.start("bare-refuse", [self.args.bare, f"127.0.0.1:{PORTS['bare-refuse']}", f"127.0.0.1:{ORIGIN_PORT}",
                                   str(n), "refuse"], proxy, PORTS["bare-refuse"])
        for name, extra in (("nginx-plain", ""),
                            ("nginx-map", f"include {os.path.join(HERE, 'nginx-block-ai-bots.conf')};")):
            conf = self.write(f"{name}.conf", self.nginx_common(name, n) + f"""
http {{ access_log off; keepalive_requests 100000;
  upstream origin {{ server 127.0.0.1:{ORIGIN_PORT}; keepalive 128; }}
  server {{ listen 127.0.0.1:{PORTS[name]} backlog=4096;
    {extra}
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on; }} }} }}
""")
            self.start(name, ["nginx", "-c", conf], proxy, PORTS[name])
        tokens = os.path.join(HERE, "haproxy-block-ai-bots.txt")
        haproxy = self.write("haproxy.cfg", f"""
global
  nbthread {n}
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:{PORTS['haproxy']}
  acl ai_robot hdr_sub(user-agent) -i -f {tokens}
  http-request deny deny_status 403 if ai_robot !{{ path /robots.txt }}
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:{ORIGIN_PORT} maxconn 1000
""")
        self.start("haproxy", ["haproxy", "-db", "-f", haproxy], proxy, PORTS["haproxy"])
        self.wrk_threads = 1 if self.pinned else 2
        for name in WORKLOADS:
            self.write(f"{name}.lua", crowd.lua(name, self.wrk_threads))

    def check(self, setups):
        """Before measuring: a sample of each workload's requests (every header
        set, first and last address) answered as intended by every setup, and
        a 200 is the origin's file, whole."""
        for name in WORKLOADS:
            groups = crowd.groups(name)
            sample = [(i, k) for i in range(len(groups)) for k in range(len(groups[i]))]
            sample.append((crowd.CLIENTS - 1, 0))
            for setup in setups:
                want, _ = expected(name, setup)
                for i, k in sample:
                    raw = crowd.request(name, i, k)
                    status, headers, body = ask(PORTS[setup], raw)
                    path = raw.split(b" ", 2)[1].decode()
                    if status != want:
                        raise RuntimeError(f"{setup} answered {status} to {name} request {path} from "
                                           f"{crowd.address(i)}, expected {want}")
                    if status == 200 and ("x-bench-origin" not in headers or len(body) < self.sizes[path]):
                        raise RuntimeError(f"{setup}: the 200 to {name} {path} is not the origin's file "
                                           f"({len(body)} bytes, origin header {'x-bench-origin' in headers})")

    def measure(self, setup, workload):
        pids = self.pids[setup]
        admin = ADMIN_PORTS.get(setup)
        counters = scrape(admin) if admin else {}
        reset_peak(pids)
        before = cpu_ticks(pids)
        pin = ["taskset", "-c", "0"] if self.pinned else []
        cmd = pin + ["wrk", f"-t{self.wrk_threads}", f"-c{self.args.connections}", f"-d{self.args.duration}s",
                     # A response slower than this is a failure of the run (wrk's default, 2 s, is
                     # reached by a debug build on a busy machine).
                     "--timeout", "10s", "--latency", "-s", os.path.join(self.tmp, f"{workload}.lua"), f"http://127.0.0.1:{PORTS[setup]}/"]
        done = run(cmd)
        ticks = cpu_ticks(pids) - before
        if done.stderr.strip():
            # wrk runs its default request when the script fails: never measure that.
            raise RuntimeError(f"wrk: {done.stderr.strip()}")
        r = parse_wrk(done.stdout)
        r["cpu_us"] = ticks * 1e6 / CLK_TCK / max(r["requests"], 1)
        r["peak_kb"] = status_kb(pids, "VmHWM")
        if admin:
            d = delta(scrape(admin), counters)
            r["actions"], r["signals"] = d["actions"], d["signals"]
            r["evidence"] = (d["rempart_evidence_records_total"], d["rempart_evidence_dropped_total"])
        verify(setup, workload, r)
        return r

    def stop(self):
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        # The ledger of millions of offers is in here, and not worth keeping.
        shutil.rmtree(self.tmp, ignore_errors=True)


def verify(setup, workload, r):
    """Fails loudly unless every request of the run was answered as intended."""
    want, action = expected(workload, setup)
    where = f"{setup}, workload {workload}"
    if r["requests"] == 0:
        raise RuntimeError(f"{where}: no request completed")
    errors = [int(n) for n in re.findall(r"\d+", r["socket_errors"])]
    if any(errors):
        raise RuntimeError(f"{where}: socket errors: {r['socket_errors']}")
    wrong = r["non2xx"] if want < 300 else r["requests"] - r["non2xx"]
    if wrong:
        raise RuntimeError(f"{where}: {wrong} of {r['requests']} responses were not {want}")
    if "actions" in r:
        others = {a: n for a, n in r["actions"].items() if a != action and n}
        if others or r["actions"].get(action, 0) < r["requests"]:
            raise RuntimeError(f"{where}: rempart's actions {r['actions']}, expected {action} for all "
                               f"{r['requests']} requests")

def run_criterion(bench):
    """Runs one criterion benchmark briefly and returns what it printed."""
    out = subprocess.run(["cargo", "bench", "--locked", "--bench", bench, "--", "--warm-up-time", "1",
                          "--measurement-time", "3", "--noplot"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout


def to_ns(value, unit):
    return float(value) * {"ns": 1, "µs": 1000, "us": 1000, "ms": 1e6}[unit]


def criterion_section(smoke):
    if smoke:
        return ""
    text = run_criterion("decision")
    # Allocation counts, per group: the lines after "allocations per request (GROUP):".
    allocs = {}
    for group, block in re.findall(r"^allocations per request \((\S+)\):\n((?:\s{2}\S+\s+[\d.]+\n)+)", text, re.M):
        for kind, n in re.findall(r"^\s{2}(\S+)\s+([\d.]+)$", block, re.M):
            allocs[(group, kind)] = n
    times = re.findall(r"^(decision(?:-[a-z]+)?)/(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M)
    # Requests in each batch (benches/decision.rs `mix()`); the challenge cases are one each.
    per = {"browser": 5, "ai-crawler": 3, "search-engine": 2, "tool": 2, "mix": 12,
           "shipped": 12, "without-fingerprint": 12, "without-network": 12}
    lines = ["## Decision path (criterion)", "",
             "`cargo bench --bench decision`: the canonical request read from the head (`Request::read`), then "
             "`rempart::decide::decide` — the one decision function of the proxy and `classify`: identity, own "
             "documents, policy, licence and payment steps, the answer — against the full shipped catalogue and all "
             "24 range files. `decision`: behaviour off; `decision-behaviour`: the shipped behaviour on, browsers "
             "from a crowd of 4,096 addresses, crawlers from their own; `decision-signals`: the whole mix with the "
             "shipped behaviour, then without header fingerprints, then without the network table (what those "
             "signals cost); `decision-challenge`: issuing the interstitial, checking an answer, a page on a valid "
             "pass, and the same client's asset. Median time per request (criterion's "
             "estimate for a batch, divided by the requests in the batch) and heap allocations per request "
             "(counting allocator).", "",
             "| group | kind | requests in batch | ns per request | allocations per request |", "|---|---|---|---|---|"]
    for group, kind, value, unit in times:
        ns = to_ns(value, unit)
        n = per.get(kind, 1)
        lines.append(f"| {group} | {kind} | {n} | {ns / n:.0f} | {allocs.get((group, kind), '?')} |")
    return "\n".join(lines) + "\n"


def behaviour_section(smoke):
    if smoke:
        return ""
    text = run_criterion("behaviour")
    mem = re.findall(r"^memory, (.+?): (.+)$", text, re.M)
    times = re.findall(r"^behaviour/(.+?)\n\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M)
    lines = ["## Behaviour stage (criterion)", "",
             "`cargo bench --bench behaviour`: one update of the per-client state (IP + user agent, IP, /24 or /64) "
             "and the signals it gives, with the shipped defaults. Median time per request.", "",
             "| case | ns per request |", "|---|---|"]
    for case, value, unit in times:
        lines.append(f"| {case} | {to_ns(value, unit):.0f} |")
    lines += ["", "Memory with 1,000,000 distinct clients in a tracker sized for 1,000,000 (resident memory added, "
              "divided by the clients; the bound in the issue is 256 bytes):", ""]
    for label, desc in mem:
        lines.append(f"- {label}: {desc}")
    return "\n".join(lines) + "\n"



def machine():
    """What the report says of the machine and the software under test."""
    cpu = run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).stdout.strip()
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    pingora = re.search(r'name = "pingora"\nversion = "([^"]+)"', lock)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1],
        "haproxy": run(["haproxy", "-v"]).stdout.split()[2],
        "wrk": (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1:2] or ["?"])[0],
        "rustc": rustc or "?", "pingora": pingora.group(1) if pingora else "?",
    }


def soak_section(path):
    """The `## Soak` section of an existing report, verbatim (benches/soak.py writes it)."""
    try:
        text = open(path).read()
    except OSError:
        return ""
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.M | re.S)
    return m.group(0).rstrip() + "\n" if m else ""


def run_once(args, threads, pinned, setups):
    """One run: every setup started, checked, measured in interleaved rounds."""
    bench = Bench(args, threads=threads, pinned=pinned)
    results = {(w, s): [] for w in WORKLOADS for s in setups}
    label = f"{threads} thread{'s' if threads > 1 else ''}, {'pinned' if pinned else 'unpinned'}"
    try:
        bench.setup()
        bench.check(setups)
        for rnd in range(args.rounds):
            for name in WORKLOADS:
                for setup in setups:
                    r = bench.measure(setup, name)
                    results[(name, setup)].append(r)
                    print(f"[{label}] round {rnd + 1} {name:9} {setup:11} {r['rps']:>9.0f} rps  "
                          f"p99 {r['p99']:.2f} ms  cpu {r['cpu_us']:.1f} us/req  "
                          f"{('actions ' + str(r['actions']) + ' signals ' + str(r['signals'])) if 'actions' in r else ''}",
                          flush=True)
        return {"threads": threads, "pinned": pinned, "setups": setups, "results": results,
                "idle": bench.idle_rss_kb, "diff": bench.diff, "wrk_threads": bench.wrk_threads}
    finally:
        bench.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rempart", required=True)
    ap.add_argument("--bare", required=True, help="the bare pingora proxy (example bare-pingora)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--output", default=None)
    ap.add_argument("--baseline", default=None, help="another rempart binary measured in the same run")
    ap.add_argument("--baseline-root", default=None, help="the checkout whose config/ the baseline reads")
    args = ap.parse_args()
    setups = (["rempart"] + (["baseline"] if args.baseline else [])
              + ["bare", "bare-refuse", "nginx-plain", "nginx-map", "haproxy"])
    if args.smoke:
        args.rounds, args.duration = 1, 1
    docs = os.path.join(ROOT, "docs", "benchmarks.md")
    output = args.output or (os.path.join(tempfile.gettempdir(), "rempart-benchmarks-smoke.md") if args.smoke
                             else docs)
    runs = [run_once(args, 1, True, setups), run_once(args, 2, False, setups)]
    sections = [criterion_section(args.smoke), behaviour_section(args.smoke)]
    text = report.markdown(args, runs, machine(), [s for s in sections if s], soak_section(docs), expected)
    with open(output, "w") as f:
        f.write(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    sys.exit(main())
