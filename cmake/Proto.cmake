# Runs protoc-c at build time; generated code lives in the build tree only.
set(PX_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${PX_PROTO_GEN_DIR})

# px_protoc_c(OUT_SOURCES INCLUDE_ROOT proto/path/a.proto ...): paths relative to INCLUDE_ROOT.
function(px_protoc_c out_var root)
  set(sources)
  foreach(rel ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(c ${PX_PROTO_GEN_DIR}/${stem}.pb-c.c)
    set(h ${PX_PROTO_GEN_DIR}/${stem}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${PX_PROTOC_C} --c_out=${PX_PROTO_GEN_DIR} -I${root} -I${CMAKE_SOURCE_DIR}/proto -I${PX_WKT_DIR}
              ${root}/${rel}
      DEPENDS ${root}/${rel}
      COMMENT "protoc-c ${rel}"
      VERBATIM)
    list(APPEND sources ${c})
  endforeach()
  set(${out_var} ${sources} PARENT_SCOPE)
endfunction()
