/* tokens.h - pxctl tokens (services/pxctl/tokens.c). */
#ifndef PXCTL_TOKENS_H
#define PXCTL_TOKENS_H

int pxctl_tokens_main(int argc, char **argv);

#endif
