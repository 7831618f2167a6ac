/*
 * demo.h - pxctl demo events: the Thuận An demo's generated first weekend.
 */
#ifndef PXCTL_DEMO_H
#define PXCTL_DEMO_H

int pxctl_demo_main(int argc, char **argv);

#endif
