# Embeds a folder of numbered migrations (0001_name.sql, ...) into a C array of px_migration_t,
# so each service binary carries its schema and applies it at start.
#
# px_embed_migrations(TARGET tgt SYMBOL px_roster_migrations DIR path/to/sql) makes an object
# library `tgt` defining `const px_migration_t SYMBOL[]` and `const size_t SYMBOL_count`.
function(px_embed_migrations)
  cmake_parse_arguments(A "" "TARGET;SYMBOL;DIR" "" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS ${A_DIR}/*.sql)
  list(SORT sql_files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${A_SYMBOL}.c)
  # The list itself as a dependency: a file removed or renamed makes no dependency newer, so
  # without this the embedded set would keep the old file. file(CONFIGURE) rewrites the list
  # only when it changes.
  set(list_file ${CMAKE_CURRENT_BINARY_DIR}/${A_SYMBOL}.list)
  string(REPLACE ";" "\n" sql_list "${sql_files}")
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${sql_list}\n")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${A_DIR} -DOUT=${out} -DSYMBOL=${A_SYMBOL}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_sql_gen.cmake
    DEPENDS ${sql_files} ${list_file} ${PROJECT_SOURCE_DIR}/cmake/embed_sql_gen.cmake
    COMMENT "embedding migrations from ${A_DIR}"
    VERBATIM)
  add_library(${A_TARGET} OBJECT ${out})
  target_include_directories(${A_TARGET} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${A_TARGET} PRIVATE PkgConfig::PX_PQ)
endfunction()
