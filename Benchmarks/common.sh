# Shared by the benchmark scripts (sourced).

# Waits until something accepts connections on 127.0.0.1:$1 (10 s at most).
wait_for_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listening on $1" >&2
    exit 1
}
