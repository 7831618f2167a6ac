/* health.h - pxctl health (services/pxctl/health.c). */
#ifndef PXCTL_HEALTH_H
#define PXCTL_HEALTH_H

int pxctl_health_main(int argc, char **argv);

#endif
