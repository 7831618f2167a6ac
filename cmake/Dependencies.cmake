# Finds the libraries phuxanh links against through pkg-config and stops with the name of
# the Debian package to install when one is missing, so a newcomer is told what to do.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config'")
endif()

function(px_require_pkg target module debian_package)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found through pkg-config: install the Debian package '${debian_package}'")
  endif()
endfunction()

px_require_pkg(PX_ZMQ libzmq libzmq3-dev)
px_require_pkg(PX_PROTOBUF_C libprotobuf-c libprotobuf-c-dev)
px_require_pkg(PX_PQ libpq libpq-dev)
px_require_pkg(PX_SODIUM libsodium libsodium-dev)
px_require_pkg(PX_JANSSON jansson libjansson-dev)

find_program(PX_PROTOC_C protoc-c)
if(NOT PX_PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install the Debian package 'protobuf-c-compiler'")
endif()
find_path(PX_WKT_DIR google/protobuf/timestamp.proto PATHS /usr/include /usr/local/include)
if(NOT PX_WKT_DIR)
  message(FATAL_ERROR "google/protobuf/timestamp.proto not found: install the Debian package 'libprotobuf-dev'")
endif()
find_package(Threads REQUIRED)
# The gateway: its HTTP server, and its webhooks' HTTP(S) client (many transfers in flight).
px_require_pkg(PX_MHD libmicrohttpd libmicrohttpd-dev)
px_require_pkg(PX_CURL libcurl libcurl4-openssl-dev)
