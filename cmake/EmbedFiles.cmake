# Embeds a folder of static files (the gateway's dashboard) into a C array, so the binary
# serves them with no path on disk to get wrong and no file outside the set to reach.
#
# px_embed_files(TARGET tgt SYMBOL name DIR path) makes an object library `tgt` defining
# `const px_embedded_file_t SYMBOL[]` (path from DIR with a leading '/', bytes, size),
# terminated by a NULL path.
function(px_embed_files)
  cmake_parse_arguments(A "" "TARGET;SYMBOL;DIR" "" ${ARGN})
  file(GLOB_RECURSE files CONFIGURE_DEPENDS ${A_DIR}/*)
  list(SORT files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${A_SYMBOL}.c)
  set(list_file ${CMAKE_CURRENT_BINARY_DIR}/${A_SYMBOL}.list)
  string(REPLACE ";" "\n" file_list "${files}")
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${file_list}\n")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${A_DIR} -DOUT=${out} -DSYMBOL=${A_SYMBOL}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_files_gen.cmake
    DEPENDS ${files} ${list_file} ${PROJECT_SOURCE_DIR}/cmake/embed_files_gen.cmake
    COMMENT "embedding files from ${A_DIR}"
    VERBATIM)
  add_library(${A_TARGET} OBJECT ${out})
endfunction()
