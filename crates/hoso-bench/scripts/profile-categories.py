#!/usr/bin/env python3
"""Sorts the samples of `perf script -F comm,tid,ip,sym` (read from stdin) into the parts of a
desk command's path and prints each part's share of the server's CPU samples as a Markdown table.

The store's own threads are parts by their names (the writer, the fsync thread, the indexer and
sled's). A sample of the async workers goes to the part of the deepest frame of its stack
(nearest the leaf) that matches one of PARTS, so JSON decoded while loading a stream counts as
decoding stored events and the hash of a request as the fingerprint; a worker sample with no
matching frame goes to "the runtime and other". Beside each share: how much of it was in the
kernel and in the allocator (by the leaf frame). The patterns follow the code's names
(crate::module::function); where the code moves, update them.
"""
import re
import sys
from collections import Counter, defaultdict

# Threads of the store (their names, cut to 15 characters by the kernel).
THREADS = [
    ("the store's writer thread (group commit, hashing, log write)", r"^hoso-store-writ"),
    ("the store's fsync thread", r"^hoso-store-sync"),
    ("the store's indexer and sled's threads", r"^(hoso-store-inde|sled-|log flusher)"),
    ("the store's zero-filling of new segments", r"^hoso-store-zero"),
]
# Parts of the async workers' time, checked for every frame, deepest frame first.
PARTS = [
    ("authentication (token lookup)", r"(hoso_server::credentials|hoso_server::auth::|hoso_server::sso)"),
    ("the request's fingerprint (SHA-256 of a command, for retries)", r"hoso_server::app::request_fingerprint"),
    ("decoding stored events (JSON, while loading a stream)", r"(DossierEvent::from_stored|hoso_server::app::decode\b|serde_json::de)"),
    ("loading the stream (index lookups, reads)", r"(hoso_server::app::App<.*>::load|hoso_store::log::Log<.*>::(read_stream|stream_version))"),
    ("decide", r"hoso_domain::decide"),
    ("making the new events (JSON, metadata)", r"hoso_server::app::new_event"),
    ("the append, from the worker (queue to the writer, wait)", r"(hoso_store::log::Log<.*>::(append|send)|<.*>::append::\{\{closure\}\})"),
    ("the projection following the log", r"(hoso_projections::|hoso_server::follow_log|hoso_store::log::Log<.*>::read_all)"),
    ("the rest of a command in hoso (resolve, checks, answer)", r"^(hoso_server::|hoso_domain::|hoso_api::|<hoso_server::grpc)"),
    ("decoding the request (prost)", r"(tonic::codec::decode|prost::encoding::|map_request_unary)"),
    ("gRPC over HTTP/2: reading, framing, writing answers (h2, hyper, tonic)", r"^(h2::|hyper::|hyper_util::|tonic::)"),
]
THREADS_RX = [(name, re.compile(rx)) for name, rx in THREADS]
PARTS_RX = [(name, re.compile(rx)) for name, rx in PARTS]
OTHER = "the runtime and other (tokio, std, unmatched)"
KERNEL_RX = re.compile(r"^(\[unknown\]$|entry_|__x64_sys|do_syscall|asm_|irqentry|_raw_spin|__schedule|tcp_|__tcp|ip_|__ip|sock_|__sys_|do_|vfs_|futex|__futex|ext4_|jbd2|schedule|try_to_wake|wake_up|finish_task|clear_page|folio_|handle_mm|__handle|exc_page)")
ALLOC_RX = re.compile(r"^(mi_|_mi_|alloc::raw_vec|__memmove|__memset)")


def classify(comm, frames):
    for name, rx in THREADS_RX:
        if rx.search(comm):
            return name
    for sym in frames:  # leaf first
        for name, rx in PARTS_RX:
            if rx.search(sym):
                return name
    return OTHER


def samples(lines):
    comm, frames = None, []
    for line in lines:
        if line.startswith("\t"):
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "[unknown]")
        elif line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = line.strip().rsplit(None, 1)[0], []
    if comm is not None:
        yield comm, frames


def main():
    counts = Counter()
    kernel = defaultdict(int)
    alloc = defaultdict(int)
    total = 0
    for comm, frames in samples(sys.stdin):
        total += 1
        part = classify(comm, frames)
        counts[part] += 1
        leaf = frames[0] if frames else ""
        if KERNEL_RX.search(leaf):
            kernel[part] += 1
        elif ALLOC_RX.search(leaf):
            alloc[part] += 1
    if total == 0:
        sys.exit("profile-categories.py: no samples on stdin (did perf record the server?)")
    print(f"| part of the path | share of the server's CPU ({total:,} samples) | of which in the kernel | of which allocating |")
    print("|---|---:|---:|---:|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f}% | {100 * kernel[name] / total:.1f}% | {100 * alloc[name] / total:.1f}% |")
    k, a = sum(kernel.values()), sum(alloc.values())
    print(f"| all | 100% | {100 * k / total:.1f}% | {100 * a / total:.1f}% |")


if __name__ == "__main__":
    main()
