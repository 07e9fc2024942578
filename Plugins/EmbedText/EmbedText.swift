import PackagePlugin

/// Compiles every `.lua` file of a target into it: `NAME.lua` becomes a Swift constant
/// `embedded_NAME` (through the `embed-text` tool), regenerated whenever the file changes.
@main
struct EmbedText: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let tool = try context.tool(named: "embed-text")
        return target.sourceFiles(withSuffix: "lua").map { file in
            let name = file.url.deletingPathExtension().lastPathComponent
            let output = context.pluginWorkDirectoryURL.appending(path: name + ".lua.swift")
            return .buildCommand(
                displayName: "Embedding \(file.url.lastPathComponent)",
                executable: tool.url,
                arguments: [file.url.path(), output.path(), "embedded_" + name],
                inputFiles: [file.url],
                outputFiles: [output])
        }
    }
}
