# Sourced by the benchmark scripts. listening_port LOG PID: waits (up to 20 s) for the server
# writing LOG to print "listening on HOST:PORT" and prints PORT; prints nothing if it did not
# (or if PID ended first).
listening_port() {
  local log=$1 pid=$2 port=""
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$port"
}
