/* campaigns.c - placeholder: its methods answer UNIMPLEMENTED until written. */
#include "roster.h"

const px_rpc_method_t roster_campaigns_methods[] = {{NULL, NULL}};
const size_t roster_campaigns_methods_count = 0;
