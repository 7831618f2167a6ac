# Finds a python3 that can import zmq, google.protobuf and prometheus_client (PX_PYTHON3):
# the build uses it to read method options from the protos (services/gateway), the tests to talk
# to services and to parse the metrics they render.
#
# The first python3 on PATH may be a private interpreter (pyenv, a virtualenv) without the
# Debian modules, so try it and then the system one; -DPX_PYTHON3=... overrides the choice.
set(PX_PYTHON3 "" CACHE FILEPATH "python3 able to import zmq and google.protobuf")
if(NOT PX_PYTHON3)
  find_program(PX_PYTHON3_ON_PATH NAMES python3)
  set(_px_py_candidates)
  foreach(c ${PX_PYTHON3_ON_PATH} /usr/bin/python3)
    if(EXISTS ${c})
      list(APPEND _px_py_candidates ${c})
    endif()
  endforeach()
  if(NOT _px_py_candidates)
    message(FATAL_ERROR "python3 not found: install the Debian package 'python3'")
  endif()
  foreach(c ${_px_py_candidates})
    execute_process(COMMAND ${c} -c "import zmq, google.protobuf, prometheus_client"
                    RESULT_VARIABLE _px_py_rc OUTPUT_QUIET ERROR_QUIET)
    if(_px_py_rc EQUAL 0)
      set(PX_PYTHON3 ${c} CACHE FILEPATH "python3 able to import zmq and google.protobuf" FORCE)
      break()
    endif()
  endforeach()
  if(NOT PX_PYTHON3)
    message(FATAL_ERROR "no python3 (tried: ${_px_py_candidates}) can import zmq, google.protobuf and "
                        "prometheus_client: install the Debian packages 'python3-zmq', "
                        "'python3-protobuf' and 'python3-prometheus-client'")
  endif()
endif()

find_program(PX_PROTOC protoc)
if(NOT PX_PROTOC)
  message(FATAL_ERROR "protoc not found: install the Debian package 'protobuf-compiler'")
endif()
