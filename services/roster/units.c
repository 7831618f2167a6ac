/* units.c - placeholder: its methods answer UNIMPLEMENTED until written. */
#include "roster.h"

const px_rpc_method_t roster_units_methods[] = {{NULL, NULL}};
const size_t roster_units_methods_count = 0;
