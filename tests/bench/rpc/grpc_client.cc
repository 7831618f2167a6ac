/*
 * grpc_client.cc - drives bench-grpc-server with blocking stub calls.
 *
 * Latency: one blocking call at a time. Throughput: `inflight` threads share one channel (and
 * one stub), each making blocking calls back to back: the synchronous API's way to keep that
 * many calls outstanding. The channel uses plain insecure credentials to 127.0.0.1, like the
 * other two ways, which use plain TCP. A reply is checked (size and bytes) so a broken echo
 * cannot pass as a fast one. Prints the px_bench_report line, the same as the C clients.
 */
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "bench_echo.grpc.pb.h"

namespace
{

using phuxanh::bench::v1::Echo;
using phuxanh::bench::v1::EchoReply;
using phuxanh::bench::v1::EchoRequest;

// Bounds on the channel coming up and on any one call, so a dead server fails the run.
constexpr auto kConnectWait = std::chrono::seconds(10);
constexpr auto kCallTimeout = std::chrono::seconds(10);

// One counter per thread, each on its own cache line, so counting does not itself contend.
struct alignas(64) Counter {
    std::atomic<long> done{0};
};

bool Call(Echo::Stub *stub, const EchoRequest &request)
{
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    EchoReply reply;
    grpc::Status status = stub->Echo(&ctx, request, &reply);
    if (!status.ok()) {
        std::fprintf(stderr, "grpc-client: call failed: %d: %s\n",
                     static_cast<int>(status.error_code()), status.error_message().c_str());
        return false;
    }
    if (reply.payload() != request.payload()) {
        std::fprintf(stderr, "grpc-client: reply does not echo the request\n");
        return false;
    }
    return true;
}

bool Latency(Echo::Stub *stub, const EchoRequest &request, const px_bench_opts_t &o,
             px_bench_result_t *r)
{
    if (o.calls == 0) {
        return true;
    }
    std::vector<int64_t> samples(static_cast<size_t>(o.calls));
    for (long i = 0; i < o.warmup; i++) {
        if (!Call(stub, request)) {
            return false;
        }
    }
    for (long i = 0; i < o.calls; i++) {
        int64_t t0 = px_bench_now_ns();
        if (!Call(stub, request)) {
            return false;
        }
        samples[static_cast<size_t>(i)] = px_bench_now_ns() - t0;
    }
    px_bench_latency_summarise(r, samples.data(), samples.size());
    return true;
}

long Sum(const std::vector<Counter> &counters)
{
    long n = 0;
    for (const Counter &c : counters) {
        n += c.done.load(std::memory_order_relaxed);
    }
    return n;
}

bool Throughput(Echo::Stub *stub, const EchoRequest &request, const px_bench_opts_t &o,
                px_bench_result_t *r)
{
    if (o.seconds <= 0) {
        return true;
    }
    std::atomic<bool> stop{false};
    std::atomic<bool> failed{false};
    std::vector<Counter> counters(static_cast<size_t>(o.inflight));
    std::vector<std::thread> threads;
    for (long i = 0; i < o.inflight; i++) {
        Counter *counter = &counters[static_cast<size_t>(i)];
        threads.emplace_back([&, counter] {
            while (!stop.load(std::memory_order_relaxed)) {
                if (!Call(stub, request)) {
                    failed.store(true);
                    return;
                }
                counter->done.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    // The window is read from the counters at its two ends: calls finishing inside it count.
    std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
    long before = Sum(counters);
    int64_t t0 = px_bench_now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    long after = Sum(counters);
    int64_t t1 = px_bench_now_ns();
    stop.store(true);
    for (std::thread &t : threads) {
        t.join();
    }
    r->inflight = o.inflight;
    r->thr_calls = after - before;
    r->thr_s = static_cast<double>(t1 - t0) / 1e9;
    return !failed.load();
}

} // namespace

int main(int argc, char **argv)
{
    px_bench_opts_t o;
    int prc = px_bench_opts_parse(&o, argc, argv);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateChannel(o.endpoint, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + kConnectWait)) {
        std::fprintf(stderr, "grpc-client: cannot connect to %s\n", o.endpoint);
        return 1;
    }
    std::unique_ptr<Echo::Stub> stub = Echo::NewStub(channel);
    EchoRequest request;
    unsigned char *payload = px_bench_payload_new(static_cast<size_t>(o.size));
    if (!payload) {
        std::fprintf(stderr, "grpc-client: out of memory\n");
        return 1;
    }
    request.set_payload(payload, static_cast<size_t>(o.size));
    std::free(payload);

    px_bench_result_t r{};
    if (!Latency(stub.get(), request, o, &r) || !Throughput(stub.get(), request, o, &r)) {
        return 1;
    }
    px_bench_report(&r);
    return 0;
}
