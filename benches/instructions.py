#!/usr/bin/env python3
"""User-space instructions per request, counted by valgrind (callgrind).

Throughput on a shared 2-core VM moves by a third within minutes, so small
changes to the request path cannot be seen in requests/s. Instructions are
counted exactly instead: the app runs under callgrind, one keep-alive
connection sends N requests, each carrying the cookie of one of 200
sessions (picked by a seeded generator), and the count is read at the end.
Two runs, of 1,000 and of 3,000 requests, are subtracted, so start-up and
the sessions' creation cancel out: what is left is 2,000 requests' worth.
Repeated runs agree within ~300 instructions (tokio's idle parking).

What it does not see: the kernel (syscalls, the network stack), waiting on
locks or caches, and Redis. Under valgrind the CPU's SHA extensions are
hidden, so SHA-256 runs in software (~3,400 instructions a block, where
the hardware takes a few hundred): sessionctl's cookie MAC and key digest
(three blocks per request) count ~10,000 more than they cost natively.
The `sha2` line of the breakdown shows how much.

Apps are `bench-web-server` modes (`ours-redis`, `rawget`, `none`) or
tower-sessions' app (`benches/peer`, mode `redis`); REDIS and ADDR in the
arguments are replaced by a throwaway redis-server's URL and a free port:

    cargo build --release -p sessionctl-benches --bin bench-web-server
    python3 benches/instructions.py /read target/release/bench-web-server ours-redis REDIS ADDR
    python3 benches/instructions.py /read target/release/bench-web-server rawget REDIS ADDR

Prints the instructions per request and, with BREAKDOWN=1, the share of
each crate (from the source path of each function, inlined code counted
where it lands).
"""
import collections, os, random, re, shutil, subprocess, sys, tempfile, time, http.client

from cpu_per_request import free_port, wait_for  # the same directory

SESSIONS = 200
COUNTS = (1000, 3000)


def drive(port, path, n):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    cookies = []
    for _ in range(SESSIONS):
        connection.request("GET", "/write")
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie")
        # An app without sessions (the floors) gets a cookie of the same
        # length, so it parses the same headers.
        cookies.append(cookie.split(";")[0] if cookie else "sid=1." + "x" * 24 + ".1796771367." + "y" * 43)
    rng = random.Random(1)
    for _ in range(SESSIONS + n):
        connection.request("GET", path, headers={"Cookie": rng.choice(cookies)})
        response = connection.getresponse()
        response.read()
        if response.status >= 400:
            sys.exit(f"{path} answered {response.status}")


def count(tmp, path, n, app):
    redis_port, port = free_port(), free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    out = os.path.join(tmp, f"callgrind-{n}.out")
    args = [a.replace("REDIS", f"redis://127.0.0.1:{redis_port}/").replace("ADDR", f"127.0.0.1:{port}") for a in app]
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(redis_port)
        wait_for(port, seconds=60)  # valgrind starts the app slowly
        drive(port, path, n)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
        # The dump is written when the app next runs; the file appears then.
        for _ in range(100):
            if os.path.exists(out + ".1"):
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        server.kill()
        server.wait()
        redis.kill()
        redis.wait()
    return out + ".1"


def by_function(profile):
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", profile], capture_output=True, text=True, check=True
    ).stdout
    costs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            costs[m.group(2)] += int(m.group(1).replace(",", ""))
    return costs


def crate_of(location):
    path, _, function = location.partition(":")
    found = re.search(r"registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+", path)
    if found:
        return found.group(1)
    if path.endswith(".rs") and "/rustc/" not in path and "registry/" not in path:
        return "the app's own source"
    if "malloc" in path:
        return "libc malloc/free"
    if re.search(r"mem(move|cpy|set|cmp)|string/", path):
        return "libc memcpy/memset"
    if "/rustc/" in path:
        # Standard library code inlined into a crate's function: named by
        # that function's crate.
        head = re.match(r"<?([A-Za-z_0-9]+)::", function.strip())
        return (head.group(1) if head else "std") + " (inlined std)"
    return os.path.basename(path) or "?"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    path, app = sys.argv[1], sys.argv[2:]
    tmp = tempfile.mkdtemp(prefix="instructions-")
    try:
        small, large = (by_function(count(tmp, path, n, app)) for n in COUNTS)
        requests = COUNTS[1] - COUNTS[0]
        total = (sum(large.values()) - sum(small.values())) / requests
        print(f"{path} on {' '.join(os.path.basename(a) for a in app[:2])}: {total:,.0f} instructions per request")
        if os.environ.get("BREAKDOWN") == "1":
            crates = collections.Counter()
            for location in set(small) | set(large):
                crates[crate_of(location)] += (large[location] - small[location]) / requests
            for crate, cost in crates.most_common(25):
                print(f"  {cost:9,.0f}  {crate}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
