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

# Builds the release binaries the benchmarks run; sets GATEWAY and HELLO to their paths. With both
# already set to executables (to compare two builds of the gateway), nothing is built.
build_binaries() {
    if [ -x "${GATEWAY:-}" ] && [ -x "${HELLO:-}" ]; then
        echo "using GATEWAY=$GATEWAY HELLO=$HELLO" >&2
        return
    fi
    echo "building release binaries…" >&2
    swift build -c release --product webhook-gateway >&2
    swift build -c release --package-path Benchmarks --product HelloHummingbird >&2
    GATEWAY=$(swift build -c release --show-bin-path)/webhook-gateway
    HELLO=$(swift build -c release --package-path Benchmarks --show-bin-path)/HelloHummingbird
}
