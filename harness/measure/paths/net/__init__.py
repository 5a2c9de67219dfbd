"""`net:PROFILE` and `net:rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%`: an emulated network of
packets; `relay:` the same profiles on the stream relay, kept for comparison.

**`net:`, the packet emulator.** This kernel has no `netem` qdisc, so a forwarder process
(`forwarder.py`) does netem's work in userspace: the harness makes a network namespace and
two TUN devices, one here (10.214.x.1) and one inside it (10.214.x.2), and the forwarder
passes every IP packet between them through the link model (`link.py`), per direction:
loss (independent, or bursty Gilbert-Elliott with `burst`), duplication, a rate queue with a
bounded size (`queue`, so bufferbloat shows), the one-way delay with jitter (kept in order
unless `reorder` asks). Inside the namespace the relay listens with no impairment of its own
and splices each connection (and each UDP flow, to the server's UDP port of the same number)
to the server on loopback, so the clients' own TCP connections and UDP datagrams cross the
link as packets: TCP's handshakes, retransmissions, congestion
control and head-of-line blocking are the kernel's, not a model. The forwarder stops by
itself when the harness is gone, its TUN devices go with it, and the harness removes the
namespace. Needs root and /dev/net/tun; without them `net:` says so in one line.

**`relay:`, the stream relay.** A userspace TCP relay holds every chunk it reads for the
one-way delay (plus jitter) before writing it on, in order, in each direction; loss is
modelled as what TCP makes of it, a chunk held one extra RTT (nothing is dropped); a new
connection's first request waits one RTT. `pacing.py` has the model in full. Bandwidth is
shaped by `tbf` on a veth pair into a namespace (`shaper=tbf`; `shaper=auto`, the default,
picks it when root and the upstream speaks plain HTTP) or by the relay's own token buckets
(`shaper=relay`), recorded as `shaper`.

Parameters (`net:PROFILE`, `net:k=v,...`, or a profile then overrides: `net:4g,loss=1%`):

    rtt      round-trip time, split evenly between the directions   ms or s     e.g. 80ms
    jitter   per direction, uniform in [-jitter, +jitter], kept in    ms or s     <= rtt/2
             order (a packet waits for the one ahead: closely spaced
             packets are delayed more than their draw)
    bw       bandwidth both ways (towards the client when up is set) kbit/mbit/gbit
    up       bandwidth towards the server                            kbit/mbit/gbit
    loss     net: each packet dropped, per direction; relay: a      %           < 100%
             chunk held one extra RTT
    burst    net: mean packets per loss burst (Gilbert-Elliott)      packets     1 to 1000
    reorder  net: probability a packet skips the delay (overtakes)   %
    dup      net: probability a packet arrives twice                 %
    queue    net: the rate queue's size, in time at the rate         ms or s     (500ms)
    shaper   relay: auto | relay | tbf                               (with bw)
    seed     the jitter and loss draws                               an integer

Metrics stay honest: added delay is still client arrival minus server emit on one clock, so
it grows by the one-way delay; wire bytes are counted on the clients' own sockets.

The modules, the harness's side first, then the helper processes' (standard library only):

    spec.py            profiles and parameters into a NetSpec (pure)
    namespace.py       network namespaces: names, addresses, a veth pair with tbf (ip, tc)
    emulator.py        the packet emulator: a namespace, the forwarder, the TUN addresses
    packet_layer.py    PacketLayer (`net:`): the emulator and a splice inside it
    relay_process.py   the relay (and forwarder) as subprocesses: start, statistics, stop
    layer.py           NetworkLayer (`relay:`): chooses the shaper, opens namespace and relay
    link.py            the forwarder's model: what one direction does to each packet (pure)
    forwarder.py       the forwarder process: `python -m harness.measure.paths.net.forwarder`
    netns.py           entering a namespace for a moment (setns), for a socket or a device
    helpers.py         what the relay and the forwarder share: arguments, priority, lateness
    relay.py           the relay process: `python -m harness.measure.paths.net.relay`
    pacing.py          the relay's model: when each chunk it holds is due
    pipes.py           the relay's asyncio protocols: a pipe per direction, the connections
    datagrams.py       the relay's UDP side (`--udp`, on net:): a flow per client address
    holding.py         a buffering CDN's hold on responses (for `cdn-buffer`)
    timerfd.py         exact timers (timerfd): an epoll selector for the relay, one for the
                       forwarder
    relay_cost.py      the relay's and the forwarder's own cost: `python -m ...net.relay_cost`
    emulator_check.py  the emulator's known answers: `python -m ...net.emulator_check`
"""
