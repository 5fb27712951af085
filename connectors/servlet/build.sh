#!/usr/bin/env bash
# Builds the servlet connector with plain javac/jar (Java 17, no third-party dependency):
#   build/sessiongrid-servlet.jar        jakarta.servlet (Tomcat 10+, WildFly 27+, Jetty 11+)
#   build/sessiongrid-servlet-javax.jar  javax.servlet (Tomcat 9, WebLogic 12-14, Jetty 9-10),
#                                        the same sources with the package names changed
#   build/sample/                        the sample shop as an exploded web application
# The Servlet API comes from Debian: tomcat10's jar (or libjakarta-servlet-api-java) and
# libservlet-api-java.
set -euo pipefail
cd "$(dirname "$0")"
first() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return; }; done; echo "missing: $*" >&2; return 1; }
JAKARTA=$(first /usr/share/tomcat10/lib/servlet-api.jar /usr/share/java/jakarta-servlet-api.jar)
JAVAX=$(first /usr/share/java/servlet-api.jar)
rm -rf build && mkdir -p build/classes build/javax-src build/javax-classes build/sample/WEB-INF/classes build/sample/WEB-INF/lib

javac --release 17 -Xlint:all -Werror -cp "$JAKARTA" -d build/classes $(find src -name '*.java')
jar --create --file build/sessiongrid-servlet.jar -C build/classes .

for f in $(cd src && find . -name '*.java'); do
  mkdir -p "build/javax-src/$(dirname "$f")"
  sed -e 's/jakarta\.servlet/javax.servlet/g' -e 's|^\(\s*\)//javax |\1|' "src/$f" > "build/javax-src/$f"
done
javac --release 17 -Xlint:all,-deprecation -Werror -cp "$JAVAX" -d build/javax-classes $(find build/javax-src -name '*.java')
jar --create --file build/sessiongrid-servlet-javax.jar -C build/javax-classes .

javac --release 17 -Xlint:all -Werror -cp "$JAKARTA" -d build/sample/WEB-INF/classes $(find sample/src -name '*.java')
cp sample/web.xml build/sample/WEB-INF/web.xml
cp build/sessiongrid-servlet.jar build/sample/WEB-INF/lib/
echo "built $(ls build/*.jar | tr '\n' ' ')and build/sample"
