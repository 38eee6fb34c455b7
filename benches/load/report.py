"""The Markdown report of the load benchmark (bench.py): machine, method,
the two runs' tables and ratios, then the criterion sections and the soak
section kept from the previous report."""

import os
import statistics
import time

import crowd

LABELS = {"rempart": "rempart (shipped config)", "baseline": "baseline rempart", "bare": "bare pingora",
          "bare-refuse": "bare pingora refusing the two crawlers",
          "nginx-plain": "nginx plain proxy", "nginx-map": "nginx + ai.robots.txt map",
          "haproxy": "HAProxy + token ACL"}

DESCRIPTIONS = {
    "page": "browser crowd: 12 KB page with its stylesheet, script and image",
    "file": "browser, 1 MiB file",
    "gptbot": "GPTBot",
    "claudebot": "ClaudeBot",
}

# The ratios of the report: (label, setup, anchor).
RATIOS = [
    ("rempart vs nginx + map", "rempart", "nginx-map"),
    ("rempart vs HAProxy", "rempart", "haproxy"),
    ("rempart vs bare pingora (what rempart adds)", "rempart", "bare"),
    ("rempart vs bare pingora refusing (a refusal's floor)", "rempart", "bare-refuse"),
    ("bare pingora vs nginx plain (pingora's floor)", "bare", "nginx-plain"),
]


def ratio(a, b):
    return "–" if not b or b != b else f"{a / b:.2f}"


def med(run, workload, setup, key):
    return statistics.median(r[key] for r in run["results"][(workload, setup)])


def answered(run, workload, setup):
    """What the setup answered during the load: the status, and rempart's actions."""
    rs = run["results"][(workload, setup)]
    total = sum(r["requests"] for r in rs)
    non2xx = sum(r["non2xx"] for r in rs)
    status = "2xx" if non2xx == 0 else ("non-2xx" if non2xx == total else f"{non2xx} non-2xx")
    if "actions" in rs[0]:
        status += f" ({counts(rs, 'actions')})"
    return status


def counts(rs, key):
    """Non-zero counters of one kind summed over measurements, as text."""
    total = {}
    for r in rs:
        for k, n in r[key].items():
            if n:
                total[k] = total.get(k, 0) + n
    return ", ".join(f"{k} {n:,}" for k, n in sorted(total.items())) or "none"


def run_section(run, expected):
    n = run["threads"]
    if run["pinned"]:
        title = "## Load, 1 thread: the proxy on a core of its own"
        how = ("Each proxy with one thread (rempart `threads = 1`, bare pingora 1 thread, nginx "
               "`worker_processes 1`, HAProxy `nbthread 1`) pinned to core 1; the origin (nginx, 1 worker) and "
               f"wrk (`-t{run['wrk_threads']}`) pinned to core 0.")
    else:
        title = f"## Load, {n} threads on {n} cores (the load generator shares them)"
        how = (f"Each proxy with {n} threads (rempart `threads = {n}`, bare pingora {n} threads, nginx "
               f"`worker_processes {n}`, HAProxy `nbthread {n}`), nothing pinned: the origin (nginx, 2 workers) "
               f"and wrk (`-t{run['wrk_threads']}`) run on the same two cores as the proxy and take part of "
               "them, so these figures are lower than what the proxy alone would do on two cores; the ratios "
               "compare setups under the same sharing.")
    lines = [title, "", how, ""]
    for name, desc in DESCRIPTIONS.items():
        lines += [f"### {desc}", "",
                  "| setup | expected | answered during the load | rps | p50 ms | p99 ms | CPU µs/req |",
                  "|---|---|---|---|---|---|---|"]
        for setup in run["setups"]:
            status, action = expected(name, setup)
            want = f"{status}" + (f" {action}" if action and setup in ("rempart", "baseline") else "")
            lines.append(
                f"| {LABELS[setup]} | {want} | {answered(run, name, setup)} | "
                f"{med(run, name, setup, 'rps'):,.0f} | {med(run, name, setup, 'p50'):.2f} | "
                f"{med(run, name, setup, 'p99'):.2f} | {med(run, name, setup, 'cpu_us'):.1f} |")
        lines.append("")
    lines += ["### What the shipped policy saw (rempart, summed over the rounds)", "",
              "From rempart's `/metrics` before and after each measurement: requests by action, requests that "
              "showed each behaviour signal (a signal alone does not act: the rules and the score do), evidence "
              "records written and dropped (the ledger's writer thread may lag the request count by a few hundred "
              "records when a measurement ends).", "",
              "| workload | requests by action | requests by signal | evidence records (dropped) |",
              "|---|---|---|---|"]
    for name, desc in DESCRIPTIONS.items():
        rs = run["results"][(name, "rempart")]
        lines.append(f"| {desc} | {counts(rs, 'actions')} | {counts(rs, 'signals')} | "
                     f"{sum(r['evidence'][0] for r in rs):,} ({sum(r['evidence'][1] for r in rs):,}) |")
    lines += ["", "### Ratios (medians of this run)", "",
              "rps ratio (higher is faster) and CPU-per-request ratio (lower is cheaper). On the crawler "
              "workloads the bare pingora proxy forwards the page (it refuses nothing), so its figures there are "
              "those of a proxied page; the refusing one answers them itself with a 403 (and forwards the "
              "browsers' requests like the bare one).", "",
              "| workload | " + " | ".join(f"{label}: rps, CPU" for label, _, _ in RATIOS) + " |",
              "|---|" + "---|" * len(RATIOS)]
    for name, desc in DESCRIPTIONS.items():
        cells = []
        for _, a, b in RATIOS:
            cells.append(f"{ratio(med(run, name, a, 'rps'), med(run, name, b, 'rps'))}×, "
                         f"{ratio(med(run, name, a, 'cpu_us'), med(run, name, b, 'cpu_us'))}×")
        lines.append(f"| {desc} | " + " | ".join(cells) + " |")
    lines += ["", "### Memory", "",
              "Peak RSS (VmHWM, reset through `/proc/PID/clear_refs` before each measurement) under the "
              f"c{run['connections']} load, MiB, the highest over the rounds (the reset sets it to the resident size "
              "of that moment, so a workload's figure includes what the ones before it left resident):", "",
              "| setup | " + " | ".join(DESCRIPTIONS[w] for w in DESCRIPTIONS) + " |",
              "|---|" + "---|" * len(DESCRIPTIONS)]
    for setup in run["setups"]:
        peaks = [max(r.get("peak_kb", 0) for r in run["results"][(w, setup)]) / 1024 for w in DESCRIPTIONS]
        lines.append(f"| {LABELS[setup]} | " + " | ".join(f"{p:.1f}" for p in peaks) + " |")
    lines += ["", f"rempart's resident memory after start, before load: {run['idle'] / 1024:.1f} MiB "
                  "(full catalogue and range table).", ""]
    return lines


def shown(path):
    """A binary's path as the report names it: its build profile and name
    (`release/rempart`), never where this machine keeps its target directory."""
    parts = os.path.normpath(path).split(os.sep)
    if "examples" in parts[-2:]:
        return "/".join(parts[-3:])
    return "/".join(parts[-2:])


def markdown(args, runs, m, criterion, soak, expected):
    smoke = " --smoke" if args.smoke else ""
    lines = [
        "# Benchmarks", "",
        "Generated by `benches/load/run.sh` (load), `cargo bench --bench decision` (decision path) and "
        f"`cargo bench --bench behaviour` (behaviour stage) on {time.strftime('%Y-%m-%d')}. Every ratio below "
        "comes from this one run. Targets, profiles and what was tried: [performance.md](performance.md).", "",
    ]
    if args.smoke:
        lines += ["**Smoke run**: debug builds, one round of one second. It shows that the harness works and that "
                  "every setup answers as intended; its figures measure nothing.", ""]
    lines += [
        "## Machine", "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; kernel {m['kernel']}",
        f"- nginx {m['nginx']}, HAProxy {m['haproxy']}, wrk {m['wrk']}, {m['rustc']}, pingora {m['pingora']}",
        f"- rempart binary: `{shown(args.rempart)}`; bare pingora: `{shown(args.bare)}`",
    ]
    if args.baseline:
        lines.append("- baseline: another rempart build (`--baseline`), measured in the same interleaved runs "
                     "with its own checkout's shipped configuration, changed the same way, on other ports")
    lines += [
        "", "## Method", "",
        f"Command: `benches/load/run.sh{smoke}`. Two runs (below), each of {args.rounds} interleaved rounds: "
        "in each round every workload is measured on every setup in turn, `wrk "
        f"-c{args.connections} -d{args.duration}s` with a Lua script of pre-built requests (no Lua callback "
        "per response: wrk only hands out the next request); the tables give the medians over the rounds.", "",
        "Setups, all given the same requests: rempart with the **shipped** `config/rempart.toml` (full "
        "catalogue, range verification, behaviour with fingerprints, opt-out headers, honeypot link, evidence "
        "ledger) as the CDN-front deployment sees traffic; **bare pingora**, the smallest `ProxyHttp` that "
        "forwards (`upstream_peer` only, `benches/bare/proxy.rs`, same pingora version and features as "
        "rempart), so that pingora's own floor is known; the same proxy **refusing GPTBot and ClaudeBot** "
        "itself (a 403 with rempart's four headers and a 66-byte page, written on the kept-alive connection "
        "as rempart writes its answers: pingora's floor for a refusal); a **plain nginx proxy**; **nginx with the "
        "ai.robots.txt map** (`nginx-block-ai-bots.conf`, a regex over the user agent); **HAProxy with the "
        "ai.robots.txt token ACL** (`hdr_sub -i`). The origin is nginx serving static files.", "",
        "Load: " + crowd.describe(), "",
        "Checks: before measuring, a sample of each workload's requests (every header set) must get the "
        "expected status from every setup, and a 200 must be the origin's whole file; during the load, wrk's "
        "count of non-2xx responses must be 0 (or all of them, for a refusal) and rempart's "
        "`rempart_requests_total` must have counted every request under the expected action and none under "
        "another (a challenge or a rate limit fails the run).", "",
        "CPU µs per request: the proxy's user + system time from /proc (all its processes) divided by the "
        "requests wrk completed. Latency: wrk's p50 and p99.", "",
        "What the benchmark changes in the shipped configuration (nothing else; state paths are relative "
        "and land in the run's temp directory):", "",
        "```diff", runs[0]["diff"].rstrip(), "```", "",
        "(The second run sets `threads = 2` instead.)", "",
    ]
    for run in runs:
        run.setdefault("connections", args.connections)
        lines += run_section(run, expected)
    for section in criterion:
        lines.append(section)
    if soak:
        lines.append(soak)
    return "\n".join(lines).rstrip() + "\n"
