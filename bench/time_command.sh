#!/bin/bash
# Times one command as a whole process, from outside; prints one JSON line. Used by bench/Invoke-Benchmark.ps1
# for `cat big.pt > /dev/null`, `sha256sum big.pt`, and the one-shot commands (pwsh -c ..., python3 -c ...).
#
#   bash bench/time_command.sh [--drop-caches] [--] <command> [args...]
#
# The clock is bash's $EPOCHREALTIME (microseconds), read just before bash forks the command and just after it
# has been reaped: the figure is fork + exec + the command's whole run + exit, as `time` would report it
# (bash's own start-up is not in it). The command's stdout goes to /dev/null (so `cat f` is `cat f > /dev/null`
# and a one-shot command's formatted output is written, as in a terminal, but not kept), stdin is /dev/null,
# stderr is passed through. Nothing is subtracted.
#
# --drop-caches: `sync; echo 3 > /proc/sys/vm/drop_caches` (root only) just before the clock starts, for the
# cold-cache cases.
#
# Output: {"seconds": s, "exit_code": 0}; a command that fails makes this script fail with its exit code.
set -u
drop=0
while (( $# )); do
    case $1 in
        --drop-caches) drop=1; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
(( $# )) || { echo "usage: time_command.sh [--drop-caches] [--] <command> [args...]" >&2; exit 2; }
if (( drop )); then
    sync
    echo 3 > /proc/sys/vm/drop_caches || { echo "cannot drop the page cache (root needed)" >&2; exit 3; }
fi
t0=$EPOCHREALTIME
"$@" > /dev/null < /dev/null
rc=$?
t1=$EPOCHREALTIME
if (( rc )); then
    echo "command failed with exit code $rc: $*" >&2
    exit "$rc"
fi
# $EPOCHREALTIME is "seconds<decimal point>microseconds"; the decimal point follows the locale, so drop any
us=$(( 10#${t1//[!0-9]/} - 10#${t0//[!0-9]/} ))
printf '{"seconds": %d.%06d, "exit_code": 0}\n' $(( us / 1000000 )) $(( us % 1000000 ))
