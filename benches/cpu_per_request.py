#!/usr/bin/env python3
"""CPU per request, side by side: the app's and Redis', read from /proc.

When the machine's speed swings (a shared 2-core VM: requests/s of the same
build moved by a third within minutes), throughput alone compares badly;
the CPU each request costs the app and Redis is steadier. This starts one
throwaway redis-server and the apps at once, gives each N sessions, and in
each of ROUNDS rounds runs `wrk -t2 -c32 -d<SECS>s` against every app in
turn, each request carrying one of its sessions' cookies at random. It
prints each run (with the share of the machine's CPU time left idle, and
the share the hypervisor took: "stolen"), then the medians and the
per-round ratios.

Apps: sessionctl's `bench-web-server ours-redis` (the release build, or
NEW_BIN), optionally another build of it (BEFORE_BIN), and tower-sessions'
RedisStore (`benches/peer`, built first). Run from the repository's root:

    cargo build --release -p sessionctl-benches --bin bench-web-server
    cargo build --release --manifest-path benches/peer/Cargo.toml
    python3 benches/cpu_per_request.py /write     # or /read, /noop
"""
import http.client, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

N = int(os.environ.get("N", "1000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECS = os.environ.get("SECS", "5")
PATH = sys.argv[1] if len(sys.argv) > 1 else "/write"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine():
    """The machine's CPU time so far, from /proc/stat: (total, idle + iowait, steal), in ticks."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[7]


def cookie_for(port):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/write")
    response = connection.getresponse()
    response.read()
    return response.getheader("Set-Cookie").split(";")[0]


def main():
    tmp = tempfile.mkdtemp(prefix="cpu-per-request-")
    children = []
    try:
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                                  "--dir", tmp], stdout=subprocess.DEVNULL)
        children.append(redis)
        wait_for(redis_port)
        url = f"redis://127.0.0.1:{redis_port}"
        apps = [("sessionctl", [os.environ.get("NEW_BIN", "target/release/bench-web-server"), "ours-redis", url])]
        if os.environ.get("BEFORE_BIN"):
            apps.append(("sessionctl before", [os.environ["BEFORE_BIN"], "ours-redis", url]))
        apps.append(("tower-sessions", [os.environ.get("PEER_BIN", "benches/peer/target/release/peer-tower-sessions"),
                                        "redis", url]))
        running = []
        for name, command in apps:
            port = free_port()
            child = subprocess.Popen(command + [f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            children.append(child)
            wait_for(port)
            script = os.path.join(tmp, f"{port}.lua")
            cookies = os.path.join(tmp, f"{port}.txt")
            with open(cookies, "w") as f:
                for _ in range(N):
                    f.write(cookie_for(port) + "\n")
            with open(script, "w") as f:
                f.write(f'local cookies = {{}}\nfor line in io.lines("{cookies}") do cookies[#cookies + 1] = line end\n'
                        'math.randomseed(os.time())\n'
                        f'request = function() return wrk.format("GET", "{PATH}", '
                        '{ ["Cookie"] = cookies[math.random(#cookies)] }) end\n')
            running.append((name, port, child.pid, script))
        results = {name: [] for name, *_ in running}
        for round_ in range(ROUNDS):
            for name, port, pid, script in running:
                app0, redis0, machine0 = ticks(pid), ticks(redis.pid), machine()
                out = subprocess.run(["wrk", "-t2", "-c32", f"-d{SECS}s", "-s", script,
                                      f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True).stdout
                app1, redis1, machine1 = ticks(pid), ticks(redis.pid), machine()
                total, idle, steal = (b - a for a, b in zip(machine0, machine1))
                requests = int(re.search(r"(\d+) requests in", out).group(1))
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
                row = (rps, (app1 - app0) * tick_us / requests, (redis1 - redis0) * tick_us / requests)
                results[name].append(row)
                print(f"round {round_ + 1} {name:18} {rps:8.0f} requests/s, CPU per request: app {row[1]:5.1f} µs,"
                      f" Redis {row[2]:5.1f} µs; machine idle {100 * idle / total:4.1f}%,"
                      f" stolen {100 * steal / total:4.1f}%", flush=True)
        print(f"\n{PATH}, {N} sessions per app, medians of {ROUNDS} rounds")
        for name, rows in results.items():
            print(f"{name:18} {statistics.median(r[0] for r in rows):8.0f} requests/s, app"
                  f" {statistics.median(r[1] for r in rows):5.1f} µs, Redis {statistics.median(r[2] for r in rows):5.1f} µs")
        first = running[0][0]
        for name, *_ in running[1:]:
            ratios = [a[0] / b[0] for a, b in zip(results[first], results[name])]
            print(f"{first} ÷ {name}, per round: {' '.join(f'{r:.2f}' for r in ratios)}"
                  f" (median {statistics.median(ratios):.2f})")
    finally:
        for child in reversed(children):
            child.kill()
            child.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
