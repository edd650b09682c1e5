# Shared by the benchmark scripts (sourced, not run).

# User and system ticks of a process and all its descendants: "USER SYS".
# /proc/PID/stat counts every thread of the process.
tree_ticks() {
  local pids=$1 all=$1 next
  while [ -n "$pids" ]; do
    next=$(for p in $pids; do cat "/proc/$p/task/$p/children" 2>/dev/null; done | xargs)
    all="$all $next"
    pids=$next
  done
  for p in $all; do awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null; done |
    awk '{u += $1; s += $2} END {print u + 0, s + 0}'
}
