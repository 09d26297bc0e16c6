#!/usr/bin/python3
"""BitTorrent baseline for the network benchmark: one seeder, one leecher.

Uses Debian's python3-libtorrent (`apt-get install python3-libtorrent`, run it with
/usr/bin/python3). Trackerless: the leecher is told the seeder's address with
`connect_peer`. DHT, local service discovery, UPnP and NAT-PMP are off, peers talk
TCP (not uTP, see `settings`), and both sessions listen on 127.0.0.1 only, so nothing leaves loopback; the benchmark also runs
this script in a network namespace that holds only loopback.

    torrent.py run CONTENT_DIR WORK_DIR

creates WORK_DIR/pack.torrent with libtorrent's `create_torrent` (default piece size,
hybrid v1+v2; kept and reused when it exists), starts a seeder process on CONTENT_DIR (in seed mode: the pieces were
just hashed), then leeches into WORK_DIR/leech and prints one JSON line:

    {"leech_secs": ..., "bytes": ..., "files": ..., "piece_size": ...,
     "peak_rss_kb": ..., "cpu_secs": ...}

`leech_secs` runs from adding the torrent to the leecher's session to libtorrent's
`torrent_finished_alert`: every piece downloaded, SHA hash-checked and handed to the
disk (libtorrent's page-cache writes; nothing is fsynced, as with sendme).
"""

import json
import os
import resource
import subprocess
import sys
import time

import libtorrent as lt


def settings():
    """Session settings: defaults, with every discovery mechanism off, over TCP.

    uTP is off too: its LEDBAT congestion control crawls on loopback (the 1,000-file
    pack took 29.5 s over uTP and 2.5 s over TCP on the benchmark machine), and the
    point is BitTorrent at its best.
    """
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }


def wait_for(session, alert_type, deadline):
    while time.monotonic() < deadline:
        session.wait_for_alert(100)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert) or isinstance(alert, lt.file_error_alert):
                raise RuntimeError(alert.message())
            if isinstance(alert, alert_type):
                return alert
    raise TimeoutError(f"no {alert_type.__name__} in time")


def seed(torrent_path, save_path):
    session = lt.session(settings())
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_path)
    params.save_path = save_path
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    deadline = time.monotonic() + 600
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            raise TimeoutError("seeder never started seeding")
        time.sleep(0.01)
    print(session.listen_port(), flush=True)
    # Serve until the parent closes our stdin.
    sys.stdin.read()


def run(content_dir, work_dir):
    content_dir = os.path.abspath(content_dir)
    os.makedirs(work_dir, exist_ok=True)
    torrent_path = os.path.join(work_dir, "pack.torrent")
    if not os.path.exists(torrent_path):
        storage = lt.file_storage()
        lt.add_files(storage, content_dir)
        creator = lt.create_torrent(storage)
        lt.set_piece_hashes(creator, os.path.dirname(content_dir))
        with open(torrent_path + ".part", "wb") as f:
            f.write(lt.bencode(creator.generate()))
        os.rename(torrent_path + ".part", torrent_path)
    info = lt.torrent_info(torrent_path)
    files = info.files()
    real = [i for i in range(files.num_files()) if not files.file_flags(i) & lt.file_storage.flag_pad_file]

    seeder = subprocess.Popen(
        [sys.executable, __file__, "seed", torrent_path, os.path.dirname(content_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(seeder.stdout.readline())
        session = lt.session(settings())
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = os.path.join(work_dir, "leech")
        started = time.monotonic()
        handle = session.add_torrent(params)
        handle.connect_peer(("127.0.0.1", port))
        wait_for(session, lt.torrent_finished_alert, started + 600)
        leech_secs = time.monotonic() - started
        status = handle.status()
        if not status.is_finished:
            raise RuntimeError("finished alert without a finished torrent")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            json.dumps(
                {
                    "leech_secs": leech_secs,
                    "bytes": sum(files.file_size(i) for i in real),
                    "files": len(real),
                    "piece_size": info.piece_length(),
                    "peak_rss_kb": usage.ru_maxrss,
                    "cpu_secs": usage.ru_utime + usage.ru_stime,
                }
            ),
            flush=True,
        )
        session.remove_torrent(handle)
    finally:
        seeder.stdin.close()
        seeder.wait(timeout=30)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
