/* keys.h - pxctl keys (services/pxctl/keys.c). */
#ifndef PXCTL_KEYS_H
#define PXCTL_KEYS_H

int pxctl_keys_main(int argc, char **argv);

#endif
