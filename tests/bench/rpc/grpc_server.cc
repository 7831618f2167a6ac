/*
 * grpc_server.cc - the gRPC C++ side of the rpc benchmark: a synchronous unary echo server.
 *
 * The synchronous API with ServerBuilder's defaults (its own thread pool), as a team adopting
 * gRPC would first write it; no tuning, so the comparison is with gRPC as it comes.
 *
 *   bench-grpc-server --listen 127.0.0.1:PORT      (PORT may be 0 for any)
 *
 * Prints "READY <host:port>" on stdout once serving; stops on SIGINT or SIGTERM.
 */
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "bench_echo.grpc.pb.h"

namespace
{

// Bounds the wait for calls in flight at shutdown, so a stuck client cannot hold the runner.
constexpr auto kDrain = std::chrono::seconds(2);

class EchoService final : public phuxanh::bench::v1::Echo::Service
{
    grpc::Status Echo(grpc::ServerContext *, const phuxanh::bench::v1::EchoRequest *request,
                      phuxanh::bench::v1::EchoReply *reply) override
    {
        reply->set_payload(request->payload());
        return grpc::Status::OK;
    }
};

} // namespace

int main(int argc, char **argv)
{
    const char *listen = nullptr;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--listen") == 0) {
            listen = argv[i + 1];
        }
    }
    if (!listen) {
        std::fprintf(stderr, "usage: %s --listen 127.0.0.1:PORT\n", argv[0]);
        return 2;
    }
    // Blocked before gRPC makes any thread, so every thread inherits the mask and only
    // sigwait below sees the signals.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    EchoService service;
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || port == 0) {
        std::fprintf(stderr, "grpc-server: cannot listen on %s\n", listen);
        return 1;
    }
    std::string host(listen);
    host = host.substr(0, host.rfind(':'));
    std::printf("READY %s:%d\n", host.c_str(), port);
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    server->Shutdown(std::chrono::system_clock::now() + kDrain);
    server->Wait();
    return 0;
}
