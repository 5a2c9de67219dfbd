"""`net:PROFILE` and `net:rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%`: an emulated network.

This kernel has no `netem` qdisc, so delay, jitter and loss come from a userspace TCP relay
(`relay.py`, a separate process started by the layer's `open()` and stopped by its PID):
every chunk it reads is held for the one-way delay (plus jitter) before it is written on,
in order, in each direction, so a request round trip costs the full RTT. Loss
is modelled as what TCP makes of it: with probability `loss` a chunk is held one extra RTT
(a retransmission); nothing is dropped. A new connection's first request waits one RTT (the
handshake loopback does not charge). `pacing.py` has the model in full.

Bandwidth is shaped by one of two, recorded as `shaper` in `parameters()`:

- `tbf`: the kernel's token bucket filter on a veth pair between the harness's namespace
  and a network namespace this layer creates (and removes) for the run. The relay's
  listening socket lives in that namespace, so clients connect to its address
  (10.213.x.y), their bytes cross the veth (shaped by `tbf` on each end: `up` leaving the
  host side, `bw` leaving the namespace) and the relay then forwards them to the server on
  loopback. Needs root, `ip` and `tc`; chosen by `shaper=auto` (the default) when they work
  and the upstream speaks plain HTTP (a TLS upstream's certificate names 127.0.0.1).
- `relay`: a token bucket per direction inside the relay, shared by all connections, with
  the relay listening on loopback. The fallback, or asked for with `shaper=relay`.

Without `bw` nothing shapes (`shaper: none`) and the relay listens on loopback.

Parameters (`net:PROFILE`, `net:k=v,...`, or a profile then overrides: `net:4g,loss=1%`):

    rtt      round-trip time, split evenly between the directions   ms or s     e.g. 80ms
    jitter   per direction, uniform in [-jitter, +jitter]            ms or s     <= rtt/2
    bw       bandwidth both ways (towards the client when up is set) kbit/mbit/gbit
    up       bandwidth towards the server                            kbit/mbit/gbit
    loss     probability that a chunk is held one extra RTT          %           < 100%
    shaper   auto | relay | tbf                                      (with bw)
    seed     the jitter and loss draws                               an integer

Metrics stay honest: added delay is still client arrival minus server emit on one clock, so
it grows by the one-way delay; wire bytes are counted on the clients' own sockets.

The modules, the harness's side first, then the relay process's (standard library only):

    spec.py           profiles and parameters into a NetSpec (pure)
    namespace.py      a network namespace on a veth pair with tbf on each end (ip, tc)
    relay_process.py  the relay as a subprocess: its command line, start, statistics, stop
    layer.py          NetworkLayer: chooses the shaper, opens namespace and relay, records both
    relay.py          the relay process: `python -m harness.measure.paths.net.relay`
    pacing.py         the relay's model: when each chunk it holds is due
    pipes.py          the relay's asyncio protocols: a pipe per direction, the connections
    timerfd.py        an epoll selector whose timeouts are exact (timerfd)
    relay_cost.py     the relay's own cost, measured: `python -m ...net.relay_cost`
"""
