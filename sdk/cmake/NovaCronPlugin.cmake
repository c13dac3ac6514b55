# novacron_add_plugin(): builds a NovaCron plugin the way the host expects it.
#
#   novacron_add_plugin(my_policy
#     ID          com.example.policy.mine     # reverse-DNS, lower case
#     VERSION     1.0.0                       # semantic version of the plugin
#     KIND        scheduling_policy           # auth_provider | scheduling_policy | hypervisor_driver | migration_transport
#     DESCRIPTION "Prefers nodes with ..."
#     LICENSE     Apache-2.0
#     SOURCES     my_policy.cc
#     [CONFIG_KEYS keys.json]                 # JSON array: [{name, type, default, description}]
#     [OUTPUT_DIR dir])                       # default: ${NOVACRON_PLUGIN_OUTPUT_DIR}
#                                             # if set, else ${CMAKE_BINARY_DIR}/plugins
#
# Result: <OUTPUT_DIR>/<ID>/<VERSION>/lib<target>.so and plugin.json next to it, the layout a
# host's plugin dir uses. The library is a MODULE with hidden visibility (only the entry
# alias is exported), linked with --no-undefined and without RPATH, so that
# `cmake --install` copies it byte for byte and the SHA-256 in plugin.json stays valid.
#
# novacron_install_plugin(my_policy DESTINATION <dir>) installs both files into
# <dir>/<ID>/<VERSION>/.



function(novacron_add_plugin target)
  # Kinds of SDK 1.0; later minors add theirs (sdk/CHANGELOG.md).
  set(_NOVACRON_KINDS auth_provider scheduling_policy hypervisor_driver migration_transport)
  cmake_parse_arguments(P "" "ID;VERSION;KIND;DESCRIPTION;LICENSE;CONFIG_KEYS;OUTPUT_DIR" "SOURCES" ${ARGN})
  foreach(required ID VERSION KIND SOURCES)
    if(NOT P_${required})
      message(FATAL_ERROR "novacron_add_plugin(${target}): ${required} is required")
    endif()
  endforeach()
  if(NOT P_ID MATCHES "^[a-z0-9]+(\\.[a-z0-9-]+)+$")
    message(FATAL_ERROR "novacron_add_plugin(${target}): ID '${P_ID}' is not reverse-DNS (e.g. com.example.policy.mine)")
  endif()
  if(NOT P_VERSION MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
    message(FATAL_ERROR "novacron_add_plugin(${target}): VERSION '${P_VERSION}' is not semantic (MAJOR.MINOR.PATCH)")
  endif()
  if(NOT P_KIND IN_LIST _NOVACRON_KINDS)
    message(FATAL_ERROR "novacron_add_plugin(${target}): KIND '${P_KIND}' is not one of: ${_NOVACRON_KINDS}")
  endif()
  if(NOT P_OUTPUT_DIR AND NOVACRON_PLUGIN_OUTPUT_DIR)
    set(P_OUTPUT_DIR "${NOVACRON_PLUGIN_OUTPUT_DIR}")
  elseif(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR "${CMAKE_BINARY_DIR}/plugins")
  endif()
  if(NOT P_LICENSE)
    set(P_LICENSE "UNLICENSED")
  endif()
  set(out_dir "${P_OUTPUT_DIR}/${P_ID}/${P_VERSION}")

  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE NovaCron::SDK)
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_compile_definitions(${target} PRIVATE
    NOVACRON_PLUGIN_ID="${P_ID}" NOVACRON_PLUGIN_VERSION="${P_VERSION}")
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    SKIP_BUILD_RPATH ON
    INSTALL_RPATH ""
    LIBRARY_OUTPUT_DIRECTORY "${out_dir}"
    NOVACRON_PLUGIN_ID "${P_ID}"
    NOVACRON_PLUGIN_VERSION "${P_VERSION}"
    NOVACRON_PLUGIN_OUTPUT "${out_dir}")
  # Sanitizer builds leave sanitizer runtime symbols undefined in modules (they live in the
  # executable), so only they may relax --no-undefined.
  if(NOT NOVACRON_PLUGIN_ALLOW_UNDEFINED)
    target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  endif()
  # Export exactly the entry alias: hidden visibility alone still exports libstdc++'s
  # template instantiations (weak and unique symbols), which could bind across plugins.
  set(version_script "${CMAKE_CURRENT_BINARY_DIR}/${target}.exports.map")
  file(WRITE "${version_script}" "{\n  global: novacron_plugin_entry_v1;\n  local: *;\n};\n")
  target_link_options(${target} PRIVATE "LINKER:--exclude-libs,ALL" "LINKER:--version-script=${version_script}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${version_script}")

  set(keys_arg "")
  if(P_CONFIG_KEYS)
    get_filename_component(keys_abs "${P_CONFIG_KEYS}" ABSOLUTE)
    set(keys_arg "-DCONFIG_KEYS=${keys_abs}")
  endif()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND}
      "-DLIBRARY=$<TARGET_FILE:${target}>"
      "-DMANIFEST=${out_dir}/plugin.json"
      "-DID=${P_ID}" "-DVERSION=${P_VERSION}" "-DKIND=${P_KIND}"
      "-DDESCRIPTION=${P_DESCRIPTION}" "-DLICENSE=${P_LICENSE}"
      "-DSDK_VERSION=${NovaCronSDK_VERSION}"
      ${keys_arg}
      -P "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/NovaCronWriteManifest.cmake"
    COMMENT "Writing plugin.json for ${P_ID} ${P_VERSION}"
    VERBATIM)
endfunction()

function(novacron_install_plugin target)
  cmake_parse_arguments(P "" "DESTINATION;COMPONENT" "" ${ARGN})
  get_target_property(id ${target} NOVACRON_PLUGIN_ID)
  get_target_property(version ${target} NOVACRON_PLUGIN_VERSION)
  get_target_property(out_dir ${target} NOVACRON_PLUGIN_OUTPUT)
  if(NOT P_COMPONENT)
    set(P_COMPONENT plugins)
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${P_DESTINATION}/${id}/${version}"
          PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE
          COMPONENT ${P_COMPONENT})
  install(FILES "${out_dir}/plugin.json" DESTINATION "${P_DESTINATION}/${id}/${version}"
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
          COMPONENT ${P_COMPONENT})
endfunction()
