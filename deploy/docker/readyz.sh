#!/bin/bash
# HEALTHCHECK of pump's images: the service's /readyz on PORT answers 200. bash alone (no curl
# in the images): /dev/tcp, one HTTP/1.0 request.
exec 3<>"/dev/tcp/127.0.0.1/${1:?port}" || exit 1
printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 _ status _ <&3 && [ "$status" = 200 ]
