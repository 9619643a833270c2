# The e2e Docker backend's node image, for machines that can pull from a
# registry. It is the same recipe as the default image that
# e2e-backend-docker builds offline with debootstrap (plugins/docker/image.go):
# keep the two in step (TestNodeImageDockerfile checks it).
#
#   docker build -t my-node -f plugins/docker/node.Dockerfile plugins/docker
#   e2e-backend-docker build-image -dockerfile | docker build -t my-node -
#   e2e create --backend docker -o image=my-node ...
#
# It works with the legacy builder and with BuildKit.
FROM debian:bookworm

RUN apt-get update && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        systemd systemd-sysv openssh-server sudo curl ca-certificates iproute2 procps dbus

# The post-processing of the default recipe, line for line.
RUN set -eu; \
    rm -f /etc/ssh/ssh_host_*; \
    mkdir -p /etc/ssh/sshd_config.d; \
    printf '%s\n' 'PermitRootLogin prohibit-password' 'PasswordAuthentication no' 'UseDNS no' >/etc/ssh/sshd_config.d/10-e2e.conf; \
    systemctl enable ssh.service; \
    : >/etc/machine-id; \
    rm -f /var/lib/dbus/machine-id; \
    echo localhost >/etc/hostname; \
    : >/etc/resolv.conf; \
    systemctl mask systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service; \
    systemctl mask getty@tty1.service console-getty.service systemd-remount-fs.service; \
    systemctl mask sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount; \
    systemctl mask apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer e2scrub_reap.service; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*

ENV container=docker
LABEL e2e.node-image=true
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
