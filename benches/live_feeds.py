"""How many live feeds one `mudar extract` sustains, and whether it stays flat.

    python3 benches/live_feeds.py --mudar target/release/mudar --feeds 1,2,3,4 --seconds 60
    python3 benches/live_feeds.py --mudar target/release/mudar --feeds 4 --seconds 1800 --sample 60

For each count N of feeds: N loopback senders (GStreamer: a 640x360 24 fps test
pattern in H.264 with an AAC ticking tone, MPEG-TS over UDP, as a camera or
encoder sends it) and one `mudar extract` of all N at the paper's analysis
(256x256, 8 fps, 16 kHz) with one worker, --commit-interval 1 and --metrics;
after the run, from mudar's own Prometheus metrics: frames received and
dropped, the capture->row latency histogram (p50/p95, interpolated within
buckets), and from /proc: mudar's CPU seconds per feed-minute and its peak RSS
(VmHWM), with RSS sampled every --sample seconds to show whether it is flat.
The senders run on the same cores (their CPU is not counted as mudar's).
Prints one JSON line per N, then a table.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sender(port):
    line = (
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=24/1 "
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=48 bitrate=1500 ! h264parse config-interval=-1 "
        f"! mpegtsmux alignment=7 name=mux ! udpsink host=127.0.0.1 port={port} "
        "audiotestsrc is-live=true wave=ticks ! audioconvert ! avenc_aac ! aacparse ! mux."
    )
    return subprocess.Popen(["gst-launch-1.0", "-q", *line.split()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def proc_stat(pid):
    """(CPU seconds, RSS KiB, peak RSS KiB) of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return cpu, rss, peak


def metrics(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
        return reply.read().decode()


def total(text, name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " "))


def quantile(text, q):
    """A quantile of the capture->row histogram, interpolated linearly within its bucket."""
    buckets = []
    for line in text.splitlines():
        m = re.match(r'mudar_capture_to_row_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    count = buckets[-1][1] if buckets else 0
    if count == 0:
        return None
    target, lower, below = q * count, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= target:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (target - below) / max(cumulative - below, 1e-9)
        lower, below = upper, cumulative
    return lower


def run(mudar, feeds, seconds, sample):
    ports = [free_udp_port() for _ in range(feeds)]
    senders = [sender(p) for p in ports]
    store = tempfile.mkdtemp(prefix="mudar-live-bench-")
    args = [mudar, "extract", *[f"udp://127.0.0.1:{p}" for p in ports], "--out", store, "--commit-interval", "1",
            "--metrics", "127.0.0.1:0", "--json"]
    ingest = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = None
    while address is None:
        line = ingest.stderr.readline()
        m = re.search(r"metrics at http://(\S+)/metrics", line)
        address = m.group(1) if m else None
        if not line and ingest.poll() is not None:
            sys.exit("mudar extract ended before serving metrics")
    # Drain stderr from now on, so a chatty run never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in ingest.stderr], daemon=True).start()
    time.sleep(5)  # connecting
    cpu0, _, _ = proc_stat(ingest.pid)
    started = time.time()
    samples = []
    while time.time() - started < seconds:
        time.sleep(min(sample, seconds - (time.time() - started)) if seconds > time.time() - started else 0)
        _, rss, _ = proc_stat(ingest.pid)
        samples.append((round(time.time() - started), rss))
        print(json.dumps({"feeds": feeds, "t_s": samples[-1][0], "rss_mib": round(rss / 1024, 1)}), file=sys.stderr, flush=True)
    cpu1, _, peak = proc_stat(ingest.pid)
    text = metrics(address)
    ingest.send_signal(signal.SIGTERM)
    out, _ = ingest.communicate(timeout=120)
    for s in senders:
        s.terminate()
        s.wait()
    summary = json.loads(out)
    frames, dropped = total(text, "mudar_feed_frames_total"), total(text, "mudar_feed_frames_dropped_total")
    minutes = seconds / 60 * feeds
    return {
        "feeds": feeds,
        "seconds": seconds,
        "frames": int(frames),
        "dropped": int(dropped),
        "reconnects": int(total(text, "mudar_feed_reconnects_total")),
        "latency_p50_s": quantile(text, 0.5),
        "latency_p95_s": quantile(text, 0.95),
        "cpu_s_per_feed_minute": (cpu1 - cpu0) / minutes,
        "peak_rss_mib": peak / 1024,
        "rss_mib": [(t, round(r / 1024, 1)) for t, r in samples],
        "exit_ok": summary["failed"] == 0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mudar", default="target/release/mudar")
    parser.add_argument("--feeds", default="1,2,3,4")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sample", type=float, default=10, help="seconds between RSS samples")
    a = parser.parse_args()
    results = []
    for n in [int(x) for x in a.feeds.split(",")]:
        result = run(a.mudar, n, a.seconds, a.sample)
        print(json.dumps(result), flush=True)
        results.append(result)
    print("| feeds | frames | dropped | p50 latency | p95 latency | CPU s / feed-minute | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['feeds']} | {r['frames']} | {r['dropped']} | {r['latency_p50_s']:.2f} s | "
              f"{r['latency_p95_s']:.2f} s | {r['cpu_s_per_feed_minute']:.1f} | {r['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
