# The latency chart of docs/benchmarks.md: percentile curves, callgate vs nginx, at saturation
# (wrk) and in open loop at 50 % and 25 % of callgate's max (callgate_bench_load).
#   gnuplot -e "dir='PLOT_DIR'; out='docs/bench-latency.png'" bench/latency.gp
# PLOT_DIR holds what bench/report.mjs wrote: *.dat ("percentile latency_ms") and labels.gp.
load dir.'/labels.gp'
set terminal pngcairo size 1400,560 font "DejaVu Sans,11"
set output out
set multiplot layout 1,2 title "callgate vs nginx: latency by percentile (same body, same machine, same run)" font ",13"
x(p) = -log10(1 - p / 100.0)
set xtics ("50 %%" x(50), "90 %%" 1, "99 %%" 2, "99.9 %%" 3, "99.99 %%" 4, "99.999 %%" 5)
set xrange [0:5]
set logscale y
set format y "%g"
set ylabel "latency (ms)"
set xlabel "percentile"
set grid xtics ytics mytics lc rgb "#dddddd"
set key top left
set style line 1 lc rgb "#1f77b4" lw 2.5
set style line 2 lc rgb "#d62728" lw 2.5
set title wrk_title font ",11"
plot dir.'/wrk-callgate.dat' using (x($1)):2 with lines ls 1 title "callgate", \
     dir.'/wrk-nginx.dat' using (x($1)):2 with lines ls 2 title "nginx"
set title open_title font ",11"
set style line 3 lc rgb "#1f77b4" lw 1.5 dt 2
set style line 4 lc rgb "#d62728" lw 1.5 dt 2
set style line 5 lc rgb "#1f77b4" lw 1.5 dt 3
set style line 6 lc rgb "#d62728" lw 1.5 dt 3
plot dir.'/open-callgate.dat' using (x($1)):2 with lines ls 1 title "callgate, CPUs awake", \
     dir.'/open-nginx.dat' using (x($1)):2 with lines ls 2 title "nginx, CPUs awake", \
     dir.'/open-callgate-idle.dat' using (x($1)):2 with lines ls 3 title "callgate, idle CPUs", \
     dir.'/open-nginx-idle.dat' using (x($1)):2 with lines ls 4 title "nginx, idle CPUs", \
     dir.'/open-callgate-quarter.dat' using (x($1)):2 with lines ls 5 title "callgate, 25 %", \
     dir.'/open-nginx-quarter.dat' using (x($1)):2 with lines ls 6 title "nginx, 25 %"
unset multiplot
