#!/bin/bash
# One "container" the way the netns tutorial does it by hand, with `ip` and `ip netns exec`,
# against a bridge that already exists (as minirt0 or docker0 does): netns, veth pair, attach,
# addresses, routes, run /bin/true inside, tear down. Run inside the bench's throwaway host
# netns; TEST-NET-3 addresses only, nothing is routed anywhere.
set -e
NS=tut$$ H=th$$ C=tc$$ BR=${TUT_BRIDGE:-tutbr0}
ip netns add "$NS"
ip link add "$H" type veth peer name "$C"
ip link set "$C" netns "$NS"
ip link set "$H" master "$BR" up
ip -n "$NS" link set "$C" name eth0
ip -n "$NS" addr add 203.0.113.2/24 dev eth0
ip -n "$NS" link set lo up
ip -n "$NS" link set eth0 up
ip -n "$NS" route add default via 203.0.113.1
ip netns exec "$NS" true
ip netns del "$NS"
ip link del "$H" 2>/dev/null || true
